import type DHT from "bittorrent-dht";
import type { TimerGroup } from "../base/clock.js";
import { createLogger } from "../base/logger.js";
import type { AnnounceFn } from "./announcer.js";

const log = createLogger("discovery:eager-announce");

/** Replies of the announce's lookup must leave the closest set unchanged this long before it is announced to. */
export const ANNOUNCE_SETTLE_MS = 150;
/** Nodes an announce goes to (bittorrent-dht's K): the closest that answered its lookup with a token. */
const DEFAULT_K = 20;

/** A get_peers reply as bittorrent-dht hands it to a lookup's visitor (k-rpc has matched its transaction). */
interface Reply {
  r?: { id?: unknown; token?: unknown };
}
interface ReplyNode {
  host?: string;
  address?: string;
  port: number;
}
type Visitor = (message: Reply, node: ReplyNode) => unknown;
type Closest = (target: Buffer, message: { q?: unknown }, onmessage: Visitor | null | undefined, cb: (err: Error | null, n?: number) => void) => void;

/** The parts of bittorrent-dht 11 (and its k-rpc) that this uses; none of them is public API. */
interface DhtInternals {
  _closest?: Closest;
  _rpc?: { id?: unknown; k?: unknown; query?: (node: { host: string; port: number }, message: object, cb: (err: Error | null) => void) => void };
}

interface Candidate {
  key: string;
  host: string;
  port: number;
  token: Buffer;
  /** XOR distance of the node's id to the info hash. */
  distance: Buffer;
}

/**
 * An announce that reaches the closest nodes while its lookup still runs.
 *
 * bittorrent-dht's `announce` looks the info hash up first and sends
 * `announce_peer` only once every query of that lookup has ended, and a query
 * to a node that left the network (still in routing tables, as on the real
 * DHT) waits out the k-rpc timeout: a server whose routing table holds one
 * departed node was findable only a full timeout after it started. Here the
 * lookup's replies are watched as they come: once the closest K nodes that
 * answered with a token have not changed for `settleMs`, they are announced
 * to; when the lookup ends, the final closest K that were not yet. So an
 * announce sends at most 2 × K `announce_peer`, and the records are on the
 * storing nodes as soon as those nodes answered.
 *
 * The lookup itself is bittorrent-dht's (`lookup`: it still emits the peers
 * it meets and keeps its table); only its visitor is wrapped, on this one
 * DHT instance, as `capGetPeersReplies` wraps its peer store. Returns
 * undefined, and logs, when bittorrent-dht keeps those internals elsewhere
 * (a later version): callers then use `dht.announce`.
 */
export function eagerAnnounce(dht: DHT, timers: TimerGroup, settleMs = ANNOUNCE_SETTLE_MS): AnnounceFn | undefined {
  const internals = dht as unknown as DhtInternals;
  const rpc = internals._rpc;
  const closest = internals._closest;
  const query = rpc?.query;
  if (typeof closest !== "function" || typeof query !== "function" || !Buffer.isBuffer(rpc!.id)) {
    log("bittorrent-dht keeps no lookup internals where version 11 does: announces wait for their whole lookup");
    return undefined;
  }
  const nodeId = rpc!.id;
  const k = typeof rpc!.k === "number" && rpc!.k > 0 ? rpc!.k : DEFAULT_K;
  // The visitor of the lookup started next (lookup() calls _closest synchronously).
  let claim: Visitor | undefined;
  internals._closest = function (this: unknown, target, message, onmessage, cb) {
    const watcher = claim;
    claim = undefined;
    if (!watcher) return closest.call(this, target, message, onmessage, cb);
    const visit: Visitor = (reply, node) => {
      watcher(reply, node);
      return onmessage ? onmessage(reply, node) : true;
    };
    return closest.call(this, target, message, visit, cb);
  };

  return (infoHash, port, cb, stored) => {
    const top: Candidate[] = [];
    const sent = new Set<string>();
    let settle: ReturnType<TimerGroup["setTimeout"]> | undefined;
    let lookupEnded = false;
    let lookupError: Error | null = null;
    let outstanding = 0;
    let acked = 0;

    const send = (c: Candidate) => {
      if (sent.has(c.key)) return;
      sent.add(c.key);
      outstanding++;
      const message = { q: "announce_peer", a: { id: nodeId, token: c.token, info_hash: infoHash, port, implied_port: 0 } };
      query.call(rpc, { host: c.host, port: c.port }, message, (err) => {
        outstanding--;
        if (!err) acked++;
        // The settled batch answered while the lookup still runs: the announce is on the storing nodes now.
        if (!lookupEnded && outstanding === 0 && acked > 0) stored?.(acked);
        finish();
      });
    };
    const finish = () => {
      if (!lookupEnded || outstanding > 0) return;
      if (acked > 0) cb(null, acked);
      else cb(lookupError ?? new Error(sent.size ? "All announce queries failed" : "No nodes to query"), 0);
    };
    const settled = () => {
      settle = undefined;
      if (!lookupEnded) for (const c of top) send(c);
    };

    claim = (reply, node) => {
      const r = reply.r;
      const host = node.host ?? node.address;
      if (lookupEnded || !r || !Buffer.isBuffer(r.token) || !Buffer.isBuffer(r.id) || r.id.length !== infoHash.length || !host) return;
      const key = `${host}:${node.port}`;
      if (top.some((c) => c.key === key)) return;
      const distance = Buffer.alloc(infoHash.length);
      for (let i = 0; i < distance.length; i++) distance[i] = r.id[i]! ^ infoHash[i]!;
      const at = top.findIndex((c) => Buffer.compare(distance, c.distance) < 0);
      if (at === -1 && top.length >= k) return;
      top.splice(at === -1 ? top.length : at, 0, { key, host, port: node.port, token: r.token, distance });
      if (top.length > k) top.pop();
      // Every change of the closest set restarts the wait; a set announced to once is not announced to again.
      timers.clearTimeout(settle);
      settle = sent.size === 0 ? timers.setTimeout(settled, settleMs) : undefined;
    };
    dht.lookup(infoHash, (err) => {
      claim = undefined;
      lookupEnded = true;
      lookupError = err;
      timers.clearTimeout(settle);
      settle = undefined;
      for (const c of top) send(c);
      finish();
    });
    claim = undefined;
  };
}
