import { BoundedSet } from "../base/bounded-set.js";
import { GroupedBoundedSet } from "../base/grouped-bounded-set.js";
import { addressSite } from "../limits/address-range.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import type { PeerRecord } from "../records/messages.js";
import {
  GOSSIP_RECORD_MAX_AGE_MS,
  PEER_RECORD_MAX_AGE_MS,
  type PeerRecordProblem,
  checkPeerRecord,
  signPeerRecord,
} from "../records/peer-record.js";

const MAX_KNOWN_SERVERS = 256;
/**
 * Of those, the most learned from listers of one address site (/24, /48):
 * a lister can make up any number of validly signed records (fresh keys,
 * any address), and must not push out what everyone else listed.
 */
const MAX_KNOWN_PER_LISTER_SITE = 32;
/** Servers listed in one pong at most. */
const MAX_ADVERTISED = 64;
/** Gossiped records remembered as checked (good or forged), so a list repeated is not verified again. */
const CHECKED_MEMORY = 1024;

/** What learning one server list came to. */
export interface LearnOutcome {
  learned: PeerRecord[];
  /** Records refused for their age (clock skew or an old relay: no fault of the sender's). */
  problems: PeerRecordProblem[];
  /** Set when a record was forged (bad signature, another topic): the rest of the list was not checked. */
  forged?: PeerRecordProblem;
  /** Signatures verified for this list. */
  checked: number;
}

/** What a linked server showed of itself: dialled by us (2), sent new records (1), nothing more (0). */
const shown = (s: PeerSession): number => (s.outgoing ? 2 : s.sentNewRecord ? 1 : 0);

const recordKey = (r: PeerRecord): string => `${r.address}|${r.timestamp}|${r.sig}`;
/** An honest server checked each record it lists: these problems mean the lister made it up. */
const isForgery = (p: PeerRecordProblem): boolean => p === "signature" || p === "topic";

export interface ServerDirectoryDeps {
  signer: ToolDbUserAdapter;
  topic: string;
  host: string;
  /** The ws:// or wss:// URL browsers dial, signed into the record (checked by the caller). */
  url?: string;
  /** The port to advertise (the bound one once listening). */
  port: () => number;
  isServer: boolean;
  now: () => number;
  /** Listers behind these IPs (a reverse proxy on this host) are grouped by identity, not by site. */
  exemptIps: readonly string[];
}

/**
 * This node's signed peer record, and the server records it knows: the
 * ones of linked servers and verified ones gossiped in pongs (what browsers
 * and other clients learn servers from).
 */
export class ServerDirectory {
  private readonly learned = new Map<string, PeerRecord>();
  /** The addresses of `learned`, by the site of the lister that taught each first; it decides what is forgotten. */
  private readonly learnedFrom = new GroupedBoundedSet<string>(MAX_KNOWN_SERVERS, MAX_KNOWN_PER_LISTER_SITE, (address) =>
    this.learned.delete(address),
  );
  private own: Promise<PeerRecord> | undefined;
  private ownValue: PeerRecord | undefined;
  private ownSignedAt = 0;
  private readonly verified = new BoundedSet<string>(CHECKED_MEMORY);
  private readonly forgedKeys = new BoundedSet<string>(CHECKED_MEMORY);

  constructor(private readonly deps: ServerDirectoryDeps) {}

  /** This node's record, re-signed when half its accepted age has passed. */
  ownRecord(): Promise<PeerRecord> {
    const now = this.deps.now();
    if (!this.own || now - this.ownSignedAt > PEER_RECORD_MAX_AGE_MS / 2) {
      this.ownSignedAt = now;
      const { signer, topic, host, url } = this.deps;
      const signing = signPeerRecord(signer, topic, host, this.deps.port(), now, url);
      this.own = signing;
      signing.then(
        (r) => (this.ownValue = r),
        () => {
          if (this.own === signing) this.own = undefined;
        },
      );
    }
    return this.own;
  }

  check(record: PeerRecord, maxAgeMs = PEER_RECORD_MAX_AGE_MS): Promise<PeerRecordProblem | null> {
    return checkPeerRecord(record, this.deps.topic, (m) => this.deps.signer.verifySignature(m), this.deps.now(), maxAgeMs);
  }

  /**
   * What a pong advertises: ourselves first when serving, then linked
   * servers, then learned ones. A linked server is listed only once it proved
   * its key (a claim to serve costs a stranger nothing, and clients dial what
   * they are given), those this node dialled first, then those that sent it
   * new records.
   */
  list(sessions: PeerSession[]): PeerRecord[] {
    const byAddress = new Map<string, PeerRecord>();
    if (this.deps.isServer && this.ownValue) byAddress.set(this.ownValue.address, this.ownValue);
    const linked = sessions.filter((s) => s.provenServer).sort((a, b) => shown(b) - shown(a));
    for (const session of linked) byAddress.set(session.address, session.record);
    for (const record of this.learned.values()) if (!byAddress.has(record.address)) byAddress.set(record.address, record);
    return [...byAddress.values()].slice(0, MAX_ADVERTISED);
  }

  /**
   * Verifies gossiped records and keeps the good ones (past the cap, the
   * oldest of the lister site that taught the most goes first). One record per address is checked (the first listed);
   * records already checked or older than the one held are not checked
   * again; the first forged record ends the list.
   */
  async learn(records: PeerRecord[], from: PeerSession, self: string): Promise<LearnOutcome> {
    const outcome: LearnOutcome = { learned: [], problems: [], checked: 0 };
    const seen = new Set<string>([self, from.address]);
    for (const record of records) {
      if (seen.has(record.address)) continue;
      seen.add(record.address);
      const key = recordKey(record);
      if (this.forgedKeys.has(key)) return { ...outcome, forged: "signature" };
      const held = this.learned.get(record.address);
      if (held && held.timestamp >= record.timestamp && recordKey(held) !== key) continue; // ours is as new: keep it
      const problem = await this.checkGossiped(record, key, outcome);
      if (problem && isForgery(problem)) return { ...outcome, forged: problem };
      if (problem) {
        outcome.problems.push(problem);
        continue;
      }
      this.learned.delete(record.address);
      this.learned.set(record.address, record);
      this.learnedFrom.add(record.address, this.siteOf(from));
      outcome.learned.push(record);
    }
    return outcome;
  }

  private siteOf(lister: PeerSession): string {
    const ip = lister.host;
    return (ip && !this.deps.exemptIps.includes(ip) && addressSite(ip)) || `id:${lister.address}`;
  }

  /** Topic and age are checked every time; the signature only once per record. */
  private async checkGossiped(record: PeerRecord, key: string, outcome: LearnOutcome): Promise<PeerRecordProblem | null> {
    const verify = (m: { h: string; a: string; s: string }): Promise<boolean> => {
      if (this.verified.has(key)) return Promise.resolve(true);
      outcome.checked++;
      return this.deps.signer.verifySignature(m);
    };
    const problem = await checkPeerRecord(record, this.deps.topic, verify, this.deps.now(), GOSSIP_RECORD_MAX_AGE_MS);
    if (!problem) this.verified.add(key);
    else if (isForgery(problem)) this.forgedKeys.add(key);
    return problem;
  }
}
