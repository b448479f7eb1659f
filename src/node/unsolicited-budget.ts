/**
 * What a client takes unasked: records a peer puts for keys the client did
 * not read, subscribe to, listen to or hold. tool-db 2.6.6 servers push
 * their own writes to every client, and a serverless WebRTC mesh replicates
 * puts, so some are wanted; but a hostile server filled an outside check's
 * page with 135 MB of records for keys it never asked for. So they are
 * taken up to a budget per link and one for the node that refills over
 * NODE_WINDOW_MS; past either, such records are refused unchecked. Only
 * records that pass the cheap checks are charged (junk is refused and
 * struck as any bad record is), so junk cannot use up the budget.
 */
import type { PeerSession } from "../network/peer-session.js";
import { TokenBucket } from "../limits/rate-limiter.js";

/** New keys and bytes one link may put unasked. */
const PER_LINK_KEYS = 1000;
const PER_LINK_BYTES = 16 * 1024 * 1024;
/** New keys and bytes all links together may put unasked per NODE_WINDOW_MS (refilled continuously). */
const PER_NODE_KEYS = 10_000;
const PER_NODE_BYTES = 128 * 1024 * 1024;
const NODE_WINDOW_MS = 10 * 60_000;

interface Spent {
  keys: number;
  bytes: number;
}

export class UnsolicitedBudget {
  private readonly perLink = new WeakMap<PeerSession, Spent>();
  private readonly keys: TokenBucket;
  private readonly bytes: TokenBucket;

  constructor(now: () => number) {
    this.keys = new TokenBucket((PER_NODE_KEYS * 1000) / NODE_WINDOW_MS, PER_NODE_KEYS, now);
    this.bytes = new TokenBucket((PER_NODE_BYTES * 1000) / NODE_WINDOW_MS, PER_NODE_BYTES, now);
  }

  /** Takes one record of `bytes` from `from`'s budgets; false (and nothing taken) when it does not fit. */
  take(from: PeerSession, bytes: number): boolean {
    const link = this.perLink.get(from) ?? { keys: 0, bytes: 0 };
    if (link.keys >= PER_LINK_KEYS || link.bytes + bytes > PER_LINK_BYTES) return false;
    if (this.keys.msUntil(1) > 0 || !this.bytes.tryTake(bytes)) return false;
    this.keys.tryTake(1);
    link.keys++;
    link.bytes += bytes;
    this.perLink.set(from, link);
    return true;
  }
}
