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
/** Servers listed in one pong at most. */
const MAX_ADVERTISED = 64;

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
}

/**
 * This node's signed peer record, and the server records it knows: the
 * ones of linked servers and verified ones gossiped in pongs (what browsers
 * and other clients learn servers from).
 */
export class ServerDirectory {
  private readonly learned = new Map<string, PeerRecord>();
  private own: Promise<PeerRecord> | undefined;
  private ownValue: PeerRecord | undefined;
  private ownSignedAt = 0;

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

  /** What a pong advertises: ourselves first when serving, then linked and learned servers. */
  list(sessions: PeerSession[]): PeerRecord[] {
    const byAddress = new Map<string, PeerRecord>();
    if (this.deps.isServer && this.ownValue) byAddress.set(this.ownValue.address, this.ownValue);
    for (const session of sessions) if (session.isServer) byAddress.set(session.address, session.record);
    for (const record of this.learned.values()) if (!byAddress.has(record.address)) byAddress.set(record.address, record);
    return [...byAddress.values()].slice(0, MAX_ADVERTISED);
  }

  /** Verifies gossiped records; keeps the good ones (oldest forgotten first past the cap). */
  async learn(records: PeerRecord[], from: PeerSession, self: string): Promise<{ learned: PeerRecord[]; problems: PeerRecordProblem[] }> {
    const learned: PeerRecord[] = [];
    const problems: PeerRecordProblem[] = [];
    for (const record of records) {
      if (record.address === self || record.address === from.address) continue;
      const problem = await this.check(record, GOSSIP_RECORD_MAX_AGE_MS);
      if (problem) {
        problems.push(problem);
        continue;
      }
      this.learned.delete(record.address);
      this.learned.set(record.address, record);
      if (this.learned.size > MAX_KNOWN_SERVERS) this.learned.delete(this.learned.keys().next().value as string);
      learned.push(record);
    }
    return { learned, problems };
  }
}
