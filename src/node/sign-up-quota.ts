import { LruMap } from "../base/bounded-set.js";
import type { Limits } from "../limits/limits.js";
import { TokenBucket } from "../limits/rate-limiter.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbRecord } from "../records/record.js";

type SignUpLimits = Pick<Limits, "signUpPow" | "maxSignUpsPerIdentity" | "maxSignUpsPerIp" | "signUpWindow" | "exemptIps">;

/** Sources whose sign-up counts are remembered (the least recently used are forgotten first). */
const SOURCES = 10_000;

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
 * Records relayed by a server are not charged here: its own clients
 * were charged where they signed up.
 */
export class SignUpQuota {
  private readonly buckets: LruMap<string, TokenBucket>;

  constructor(
    private readonly limits: SignUpLimits,
    private readonly now: () => number,
    /** Whether records from this session were relayed by a server (charged where they entered the mesh). */
    private readonly relayedByServer: (from: PeerSession) => boolean,
  ) {
    this.buckets = new LruMap(SOURCES);
  }

  /** Null when this new `==` key from `from` may be stored, else why not. */
  check(record: ToolDbRecord, from: PeerSession): string | null {
    const pow = this.limits.signUpPow;
    if (pow > 0 && !record.h.startsWith("0".repeat(pow))) return `sign-up needs a proof of work of ${pow} leading zero digits on its hash`;
    if (this.relayedByServer(from)) return null;
    for (const [key, cap] of this.sources(from)) {
      if (this.bucket(key, cap).msUntil() > 0) {
        return `sign-up quota of this ${key.startsWith("ip:") ? "address" : "identity"} used up (${cap} per ${Math.round(this.limits.signUpWindow / 60_000)} min)`;
      }
    }
    return null;
  }

  /** A new `==` key from `from` was stored: charged to its identity and address. */
  charge(from: PeerSession): void {
    if (this.relayedByServer(from)) return;
    for (const [key, cap] of this.sources(from)) this.bucket(key, cap).tryTake();
  }

  private sources(from: PeerSession): Array<[string, number]> {
    const out: Array<[string, number]> = [[`id:${from.address}`, this.limits.maxSignUpsPerIdentity]];
    const ip = from.host;
    if (ip && !this.limits.exemptIps.includes(ip)) out.push([`ip:${ip}`, this.limits.maxSignUpsPerIp]);
    return out;
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
