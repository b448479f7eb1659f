/**
 * A mass announce on a DHT we run: 16,000 announces from 8 attacker IPs
 * (2,000 ports each) on one topic. bittorrent-dht alone stores them all and
 * answers get_peers with all of them, a reply too big for UDP, so lookups of
 * the topic find nothing. Our nodes keep 32 ports per IP and topic
 * (announce-quota.ts) and answer with at most 100, sampled at random.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import DHT from "bittorrent-dht";
import { MAX_PEERS_PER_REPLY, MAX_PORTS_PER_ADDRESS_AND_TOPIC, startBootstrapNode, topicInfoHash, type BootstrapNode } from "../../src/entries/discovery.js";
import { destroyDht, dhtEvent } from "../helpers/dht-events.js";

/** Enough that even with announces lost on a loaded machine the plain node's reply (8 bytes a peer) is over a datagram's 64 KiB. */
const ANNOUNCES = 16_000;
const TOPIC = "get-peers-cap";
const ATTACKERS = Array.from({ length: 8 }, (_, i) => `127.0.0.${66 + i}`);
const PER_ATTACKER = ANNOUNCES / ATTACKERS.length;

async function ready(dht: DHT): Promise<void> {
  if (!dht.ready) await dhtEvent(dht, "ready", 5000);
}

function announce(dht: DHT, infoHash: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => dht.announce(infoHash, port, (err) => (err ? reject(err) : resolve())));
}

/** One lookup from a fresh node: the peers each replying node gave. */
async function lookupByNode(bootstrap: string[], infoHash: Buffer): Promise<Map<string, Set<number>>> {
  const looker = new DHT({ bootstrap, timeout: 500 });
  looker.on("error", () => undefined);
  const byNode = new Map<string, Set<number>>();
  try {
    looker.listen(0, "127.0.0.90");
    await dhtEvent(looker, "ready", 5000);
    looker.on("peer", (peer, hash, from) => {
      if (!Buffer.from(hash).equals(infoHash) || !from) return;
      // bittorrent-dht passes the replying node's rinfo ({ address, port }).
      const key = `${(from as { address?: string }).address ?? from.host}:${from.port}`;
      if (!byNode.has(key)) byNode.set(key, new Set());
      byNode.get(key)!.add(peer.port);
    });
    await new Promise<void>((resolve) => looker.lookup(infoHash, () => resolve()));
    return byNode;
  } finally {
    await destroyDht(looker);
  }
}

describe("get_peers replies under a mass announce", { timeout: 120_000 }, () => {
  const ours: BootstrapNode[] = [];
  let plain: DHT;
  const attackers: DHT[] = [];
  let bootstrap: string[];
  const infoHash = topicInfoHash(TOPIC);

  before(async () => {
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap: false, timeout: 500 });
    ours.push(seed);
    bootstrap = [`127.0.0.1:${seed.address().port}`];
    for (let i = 0; i < 2; i++) ours.push(await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap, timeout: 500 }));
    await Promise.all(ours.slice(1).map((n) => ready(n.dht)));
    // A plain bittorrent-dht node among them, as most of the public DHT's nodes would be to this attack.
    plain = new DHT({ bootstrap, timeout: 500 });
    plain.on("error", () => undefined);
    plain.listen(0, "127.0.0.1");
    await dhtEvent(plain, "ready", 5000);

    // The attackers: one lookup each for the storing nodes' tokens, then 2,000 announces each of its own IP.
    // Each attacker its own ports (i × 2,000 + 1 …), so that a lookup's ports tell the attackers' entries apart.
    for (const [i, host] of ATTACKERS.entries()) {
      const attacker = new DHT({ bootstrap, timeout: 500 });
      attackers.push(attacker);
      attacker.on("error", () => undefined);
      attacker.listen(0, host);
      await dhtEvent(attacker, "ready", 5000);
      const base = i * PER_ATTACKER;
      await announce(attacker, infoHash, base + 1);
      for (let first = base + 2; first <= base + PER_ATTACKER; first += 500) {
        const batch: Array<Promise<void>> = [];
        for (let port = first; port < first + 500 && port <= base + PER_ATTACKER; port++) batch.push(announce(attacker, infoHash, port));
        await Promise.all(batch);
      }
    }
  });

  after(async () => {
    await Promise.all([...ours.map((n) => n.close()), destroyDht(plain), ...attackers.map(destroyDht)]);
  });

  it("the plain node stored the whole flood; ours at most 32 ports of each attacker IP", () => {
    // record-cache's own count, below the capped get().
    const stored = (dht: DHT) => (dht as unknown as { _peers: { size: number } })._peers.size;
    assert.ok(stored(plain) >= 8200, `stored ${stored(plain)} of ${ANNOUNCES}: a reply of all of them (8 bytes a peer) would fit a 64 KiB datagram`);
    const quota = ATTACKERS.length * MAX_PORTS_PER_ADDRESS_AND_TOPIC;
    for (const node of ours) assert.ok(stored(node.dht) > MAX_PEERS_PER_REPLY && stored(node.dht) <= quota + 8, `stored ${stored(node.dht)}, quota ${quota}`);
  });

  it("our nodes answer with at most 100 peers sampled at random; the plain node's answer is lost", async () => {
    const ourKeys = new Set(ours.map((n) => `127.0.0.1:${n.address().port}`));
    const plainKey = `127.0.0.1:${plain.address().port}`;
    // A datagram can be lost on a loaded machine: look up again (at most 5 times) until each of our nodes answered once.
    const lookups: Array<Map<string, Set<number>>> = [];
    const answered = (key: string) => lookups.some((m) => (m.get(key)?.size ?? 0) > 0);
    while (lookups.length < 2 || (lookups.length < 5 && ![...ourKeys].every(answered))) lookups.push(await lookupByNode(bootstrap, infoHash));
    for (const key of ourKeys) assert.ok(answered(key), `node ${key} answered with no peer in ${lookups.length} lookups`);
    for (const m of lookups) {
      for (const key of ourKeys) assert.ok((m.get(key)?.size ?? 0) <= MAX_PEERS_PER_REPLY, `node ${key} answered with ${m.get(key)?.size} peers`);
      // The attack itself: a reply of thousands of peers does not fit in a datagram, so nothing comes back.
      assert.equal(m.get(plainKey)?.size ?? 0, 0, "the uncapped node's reply got through");
    }
    // Sampled at random: the lookups saw more of the 256 each of our nodes holds than one answer carries.
    const seen = new Set(lookups.flatMap((m) => [...ourKeys].flatMap((key) => [...(m.get(key) ?? [])])));
    assert.ok(seen.size > MAX_PEERS_PER_REPLY, `the lookups saw ${seen.size} distinct peers`);
  });
});
