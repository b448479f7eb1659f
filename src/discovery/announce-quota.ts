import type DHT from "bittorrent-dht";
import { LruMap } from "../base/bounded-set.js";
import { createLogger } from "../base/logger.js";

const log = createLogger("discovery:announce-quota");

/** Ports one IP address keeps announced on one topic (info hash) in our nodes' peer stores; its oldest goes first. */
export const MAX_PORTS_PER_ADDRESS_AND_TOPIC = 32;
/** Announces one IP address keeps in our nodes' peer stores over all topics. */
export const MAX_ANNOUNCES_PER_ADDRESS = 64;
/** Addresses whose announces are counted at once (least recently announcing forgotten first): at most ~2 × this × MAX_ANNOUNCES_PER_ADDRESS entries. */
const ADDRESSES_COUNTED = 1024;

/** The part of bittorrent-dht's peer store (record-cache) that announces write to. */
interface PeerStoreWrites {
  add(infoHash: string, record: unknown, value?: unknown): unknown;
  remove(infoHash: string, record: unknown, value?: unknown): unknown;
}


/**
 * Bounds what one IP address can store through announces on a bittorrent-dht
 * node we run (every Discovery's, and `startBootstrapNode`'s).
 *
 * bittorrent-dht 11 keeps every announced port in one peer store of 10,000
 * records over all topics, and past that drops its older half whole. An
 * outside check flushed a real server's announce off every node of a
 * private DHT with 25,000 announces from one IP (fresh clients then found
 * only the attacker's ports until the server announced again, and it was
 * flushed again as easily). With these quotas one address holds at most 64
 * entries, so a flush takes about 160 addresses, not one; an address
 * announcing more replaces its own oldest entries. Returns false, and logs,
 * if the store is not where bittorrent-dht 11 keeps it.
 */
export function limitAnnouncesPerAddress(dht: DHT, perTopic = MAX_PORTS_PER_ADDRESS_AND_TOPIC, perAddress = MAX_ANNOUNCES_PER_ADDRESS): boolean {
  const store = (dht as unknown as { _peers?: Partial<PeerStoreWrites> })._peers;
  if (!store || typeof store.add !== "function" || typeof store.remove !== "function") {
    log("bittorrent-dht keeps no peer store where version 11 does: announces are not limited per address");
    return false;
  }
  const add = store.add.bind(store);
  const remove = store.remove.bind(store);
  // Entries keyed infoHash:peer-hex; the hex, not bittorrent-dht's buffer (a slice of an 8 KiB pool block
  // that an entry would keep alive), is what removes it: record-cache keys records by their hex.
  const byAddress = new LruMap<string, Map<string, { infoHash: string; peer: string }>>(ADDRESSES_COUNTED);
  store.add = (infoHash: string, record: unknown, value?: unknown) => {
    // An encoded peer: the IPv4 address's 4 bytes, then the port's 2 (bittorrent-dht 11 is IPv4 only).
    if (!(record instanceof Uint8Array) || record.length < 6) return add(infoHash, record, value);
    const hex = Buffer.from(record.buffer, record.byteOffset, record.byteLength).toString("hex");
    const address = hex.slice(0, -4);
    const entry = `${infoHash}:${hex}`;
    let held = byAddress.get(address);
    if (!held) byAddress.set(address, (held = new Map()));
    if (!held.delete(entry)) {
      let sameTopic = 0;
      let oldestOfTopic: string | undefined;
      for (const [key, h] of held) {
        if (h.infoHash !== infoHash) continue;
        sameTopic++;
        oldestOfTopic ??= key;
      }
      const evicted = sameTopic >= perTopic ? oldestOfTopic : held.size >= perAddress ? held.keys().next().value : undefined;
      if (evicted !== undefined) {
        const old = held.get(evicted)!;
        held.delete(evicted);
        remove(old.infoHash, old.peer);
      }
    }
    held.set(entry, { infoHash, peer: hex });
    return add(infoHash, record, value);
  };
  return true;
}
