/**
 * Announces reach the storing nodes while their lookup still waits on
 * departed nodes. Nodes whose ids lie right next to the topic's info hash
 * join the loopback testnet and leave without being evicted, as nodes do on
 * the real DHT: every lookup of the topic queries them first, and those
 * queries wait out the k-rpc timeout. bittorrent-dht's own announce sent
 * `announce_peer` only after that; ours must have stored the server on live
 * nodes before its lookup ends.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import DHT from "bittorrent-dht";
import { Discovery } from "../../src/entries/discovery.js";
import { eagerAnnounce } from "../../src/discovery/eager-announce.js";
import { TimerGroup, systemClock } from "../../src/base/clock.js";
import { createDhtTestnet, waitForEvent, type DhtTestnet } from "../helpers/dht-testnet.js";
import { destroyDht, dhtEvent } from "../helpers/dht-events.js";

const TOPIC = "tooldb-eager-announce-test";
/** k-rpc timeout of the server: its lookup cannot end before its queries to departed nodes time out. */
const RPC_TIMEOUT_MS = 2000;

let net: DhtTestnet;

/** An id sharing all but the last bits with `target`: closer to it than any random node. */
function idNear(target: Buffer, n: number): Buffer {
  const id = Buffer.from(target);
  id[id.length - 1] = id[id.length - 1]! ^ n;
  return id;
}

before(async () => {
  net = await createDhtTestnet(6);
});
after(async () => {
  await net.destroy();
});

describe("eager announce", { timeout: 40_000 }, () => {
  it("stores the server on live nodes before its lookup's queries to departed nodes time out, once per node", async () => {
    const probe = new Discovery({ bootstrap: false, host: "127.0.0.1" });
    const infoHash = probe.infoHashOf(TOPIC);
    await probe.destroy();
    // Departed: joined (so the testnet's nodes keep them in their tables), then gone without a word.
    for (let n = 1; n <= 3; n++) {
      const node = new DHT({ bootstrap: net.bootstrap, nodeId: idNear(infoHash, n), timeout: 500 });
      const ready = dhtEvent(node, "ready", 5000);
      node.listen(0, "127.0.0.9");
      await ready;
      await destroyDht(node);
    }

    const stored: Array<{ node: number; at: number }> = [];
    const listeners = net.nodes.map((node, i) => {
      const listener = (_peer: unknown, hash: Buffer) => {
        if (hash.equals(infoHash)) stored.push({ node: i, at: performance.now() });
      };
      node.on("announce", listener);
      return () => node.off("announce", listener);
    });
    const server = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.2", timeout: RPC_TIMEOUT_MS, fastInterval: 5000, slowInterval: 60_000, lookupTimeout: 10_000 });
    try {
      const start = performance.now();
      server.join(TOPIC, 9000);
      const [, port, nodes] = await waitForEvent<[string, number, number]>(server, "announced", 10_000);
      const announcedAt = performance.now();
      assert.equal(port, 9000);
      assert.ok(nodes >= 1, `the announce reached ${nodes} nodes`);
      assert.ok(announcedAt - start >= RPC_TIMEOUT_MS * 0.9, `the lookup ended after ${Math.round(announcedAt - start)} ms: it did not wait on the departed nodes, so this test shows nothing`);
      assert.ok(stored.length >= 1, "no live node stored the announce");
      // No query of the lookup can time out before RPC_TIMEOUT_MS from start: a store before that did not wait on the departed nodes.
      const first = Math.min(...stored.map((s) => s.at)) - start;
      assert.ok(first < RPC_TIMEOUT_MS, `first node stored the server ${Math.round(first)} ms after start, the announce's lookup ended ${Math.round(announcedAt - start)} ms after start`);
      const perNode = new Map<number, number>();
      for (const s of stored) perNode.set(s.node, (perNode.get(s.node) ?? 0) + 1);
      for (const [node, count] of perNode) assert.equal(count, 1, `node ${node} got ${count} announce_peer for one announce`);
      // A client of the topic finds the server on those nodes.
      const client = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.3", timeout: RPC_TIMEOUT_MS });
      try {
        client.join(TOPIC);
        const [, peer] = await waitForEvent<[string, { host: string; port: number }]>(client, "peer", 10_000);
        assert.deepEqual(peer, { host: "127.0.0.2", port: 9000 });
      } finally {
        await client.destroy();
      }
    } finally {
      for (const off of listeners) off();
      await server.destroy();
    }
  });

  it("falls back to bittorrent-dht's own announce when its internals are not where version 11 keeps them", () => {
    const timers = new TimerGroup(systemClock);
    assert.equal(eagerAnnounce({} as DHT, timers), undefined);
    assert.equal(eagerAnnounce({ _closest: () => undefined, _rpc: { query: () => undefined } } as unknown as DHT, timers), undefined);
  });
});
