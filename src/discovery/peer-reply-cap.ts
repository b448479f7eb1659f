import type DHT from "bittorrent-dht";
import { createLogger } from "../base/logger.js";

const log = createLogger("discovery:reply-cap");

/**
 * Peers one `get_peers` reply carries at most: libtorrent's
 * `max_peers_reply` is 100, and other mainline nodes answer about as many.
 */
export const MAX_PEERS_PER_REPLY = 100;

/** The part of bittorrent-dht's peer store (record-cache) that replies read. */
interface PeerStore {
  get(infoHash: string, n?: number): unknown[];
}

/**
 * Makes a bittorrent-dht node answer `get_peers` with at most `max` peers,
 * sampled at random, as mainstream mainline implementations do.
 *
 * bittorrent-dht 11 answers with every peer it stores for the info hash: 9,000
 * announces of one topic make each reply about 72 KB, more than a UDP datagram
 * holds, so the reply is never sent and a lookup of that topic finds nothing.
 * Its peer store (record-cache) already samples uniformly at random when asked
 * for `n` records; the node just never asks for fewer than all. This wraps the
 * store's `get` so every caller gets at most `max` (the node's own lookups ask
 * for 100 already). Returns false, and logs, if the store is not where
 * bittorrent-dht 11 keeps it (a later version may cap replies itself).
 */
export function capGetPeersReplies(dht: DHT, max = MAX_PEERS_PER_REPLY): boolean {
  const store = (dht as unknown as { _peers?: PeerStore })._peers;
  if (!store || typeof store.get !== "function") {
    log("bittorrent-dht keeps no peer store where version 11 does: get_peers replies are not capped");
    return false;
  }
  const get = store.get.bind(store);
  // record-cache treats n = 0 or undefined as "all".
  store.get = (infoHash: string, n?: number) => get(infoHash, n ? Math.min(n, max) : max);
  return true;
}
