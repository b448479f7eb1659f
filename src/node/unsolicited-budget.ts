/**
 * What a client takes unasked: records a peer puts for keys the client did
 * not read, subscribe to or hold. tool-db 2.6.6 servers push their own
 * writes to every client, and a serverless WebRTC mesh replicates puts, so
 * some are wanted; but a hostile server filled an outside check's page with
 * 135 MB of records for keys it never asked for. So they are taken up to a
 * budget per link and one for the node since it started; past either, such
 * records are refused unchecked.
 */
import type { PeerSession } from "../network/peer-session.js";

/** New keys and bytes one link may put unasked. */
const PER_LINK_KEYS = 1000;
const PER_LINK_BYTES = 16 * 1024 * 1024;
/** New keys and bytes all links together may put unasked, since the node started. */
const PER_NODE_KEYS = 10_000;
const PER_NODE_BYTES = 128 * 1024 * 1024;

interface Spent {
  keys: number;
  bytes: number;
}

export class UnsolicitedBudget {
  private readonly perLink = new WeakMap<PeerSession, Spent>();
  private readonly node: Spent = { keys: 0, bytes: 0 };

  /** Takes one record of `bytes` from `from`'s budgets; false (and nothing taken) when it does not fit. */
  take(from: PeerSession, bytes: number): boolean {
    const link = this.perLink.get(from) ?? { keys: 0, bytes: 0 };
    if (link.keys >= PER_LINK_KEYS || link.bytes + bytes > PER_LINK_BYTES) return false;
    if (this.node.keys >= PER_NODE_KEYS || this.node.bytes + bytes > PER_NODE_BYTES) return false;
    link.keys++;
    link.bytes += bytes;
    this.node.keys++;
    this.node.bytes += bytes;
    this.perLink.set(from, link);
    return true;
  }
}
