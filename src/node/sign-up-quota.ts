import { LruMap } from "../base/bounded-set.js";
import type { Limits } from "../limits/limits.js";
import { TokenBucket } from "../limits/rate-limiter.js";
import { addressRange } from "../limits/address-range.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbRecord } from "../records/record.js";

type SignUpLimits = Pick<Limits, "signUpPow" | "maxSignUpsPerIdentity" | "maxSignUpsPerIp" | "maxServerSignUpsPerIp" | "signUpWindow" | "exemptIps">;

/** An address range (/24, /64) of servers gets this many times the sign-ups of one server address (several servers may share one). */
const SERVER_RANGE_SHARE = 4;

/** Sources whose sign-up counts are remembered (the least recently used are forgotten first). */
const SOURCES = 10_000;

/** How a refusal by a quota that refills begins (`refills`). */
const REFILLS = "sign-up quota of this ";

/**
 * What a new first-writer key (`==<user>`: an account record, a sign-up)
 * costs on a server. Anyone can make one with a fresh key pair, and each
 * stays for good, so they are paid and rationed:
 *
 * - a proof of work of `signUpPow` leading zero hex digits on the record's
 *   hash (tool-db's `pow`, applied to sign-ups only);
 * - at most `maxSignUpsPerIdentity` per `signUpWindow` from the identity of
 *   the link that sent them, and `maxSignUpsPerIp` from its IP (unless the IP
 *   is exempt), refilled continuously: one identity or one address cannot
 *   fill the store with accounts; a real user's sign-up from elsewhere fits.
 *
 * Records relayed by a proven server (its clients' sign-ups, charged where
 * they signed up) are charged to separate, larger buckets: its identity and
 * IP get `maxServerSignUpsPerIp` each, its address range (/24, /64) 4 × that
 * (exempt IPs: the identity alone). Anyone can prove a fresh key and say it
 * is a server (docs/security.md), so relaying is no free pass: one address
 * cannot store unbounded sign-ups through sync or relay. A refused sign-up
 * is just not stored (no strike); a later sync run offers it again. A quota
 * of 0 takes none, ever: its refusal is for good (not `refills`), so sync
 * moves on past such sign-ups as past any other refused record.
 *
 * A sign-up is charged as it passes `check` (StoreQuota.signUpRefusal), before
 * its merge: sign-ups merged at once cannot overdraw a bucket.
 */
export class SignUpQuota {
  private readonly buckets: LruMap<string, TokenBucket>;

  constructor(
    private readonly limits: SignUpLimits,
    private readonly now: () => number,
    /** Whether records from this session are relayed by a server (charged to the larger server buckets). */
    private readonly relayedByServer: (from: PeerSession) => boolean,
  ) {
    this.buckets = new LruMap(SOURCES);
  }

  /** Null when this new `==` key from `from` may be stored, else why not. */
  check(record: ToolDbRecord, from: PeerSession): string | null {
    const pow = this.limits.signUpPow;
    if (pow > 0 && !record.h.startsWith("0".repeat(pow))) return `sign-up needs a proof of work of ${pow} leading zero digits on its hash`;
    const sources = this.sources(from);
    // A quota of 0 never refills: its refusal is for good (asked first, so a sign-up it refuses never counts as deferred).
    const closed = sources.find(([, cap]) => cap <= 0);
    if (closed) return `sign-ups from this ${this.describe(closed[0])} are not accepted (a quota of 0)`;
    for (const [key, cap] of sources) {
      if (this.bucket(key, cap).msUntil() > 0) return `${REFILLS}${this.describe(key)} used up (${cap} per ${Math.round(this.limits.signUpWindow / 60_000)} min)`;
    }
    return null;
  }

  /**
   * Whether a refusal of `check` is a quota that refills (the same sign-up fits later), not a missing proof of work nor a
   * quota of 0 (which never takes one: a sync run that kept its checkpoint before such sign-ups waited for ever).
   */
  refills(problem: string): boolean {
    return problem.startsWith(REFILLS);
  }

  /** Ms until every bucket of `from` can take `count` sign-ups (each at most its capacity): when refused ones may fit. */
  retryMs(from: PeerSession, count: number): number {
    let ms = 0;
    for (const [key, cap] of this.sources(from)) ms = Math.max(ms, this.bucket(key, cap).msUntil(Math.min(Math.max(1, count), cap)));
    return ms;
  }

  /** A new `==` key from `from` is about to be stored: charged to its identity and address. */
  charge(from: PeerSession): void {
    for (const [key, cap] of this.sources(from)) this.bucket(key, cap).charge(1);
  }

  private sources(from: PeerSession): Array<[string, number]> {
    const ip = from.host;
    const counted = ip !== undefined && !this.limits.exemptIps.includes(ip);
    if (!this.relayedByServer(from)) {
      const out: Array<[string, number]> = [[`id:${from.address}`, this.limits.maxSignUpsPerIdentity]];
      if (counted) out.push([`ip:${ip}`, this.limits.maxSignUpsPerIp]);
      return out;
    }
    const cap = this.limits.maxServerSignUpsPerIp;
    const out: Array<[string, number]> = [[`sid:${from.address}`, cap]];
    if (counted) out.push([`sip:${ip}`, cap], [`snet:${addressRange(ip) ?? ip}`, cap * SERVER_RANGE_SHARE]);
    return out;
  }

  /** A source's key as words: "relaying server's address range", "identity". */
  private describe(key: string): string {
    const what = key.startsWith("s") ? "relaying server's " : "";
    return what + (key.includes("ip:") ? "address" : key.includes("net:") ? "address range" : "identity");
  }

  private bucket(key: string, cap: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket((cap * 1000) / Math.max(1, this.limits.signUpWindow), cap, this.now);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }
}
