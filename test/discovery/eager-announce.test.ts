/**
 * Announces reach the storing nodes while their lookup still waits on
 * departed nodes. Nodes whose ids lie right next to the topic's info hash
 * join the loopback testnet and leave without being evicted, as nodes do on
 * the real DHT: every lookup of the topic queries them first, and those
 * queries wait out the k-rpc timeout. bittorrent-dht's own announce sent
 * `announce_peer` only after that; ours must have stored the server on live
 * nodes before its lookup ends, and say so then.
 */
import assert from "node:assert/strict";
import { afterEach, before, beforeEach, describe, it } from "node:test";
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

/** Three nodes with ids next to `infoHash` join (so the testnet's nodes keep them in their tables), then leave without a word. */
async function departNear(infoHash: Buffer, first: number): Promise<void> {
  for (let n = first; n < first + 3; n++) {
    const node = new DHT({ bootstrap: net.bootstrap, nodeId: idNear(infoHash, n), timeout: 500 });
    const ready = dhtEvent(node, "ready", 5000);
    node.listen(0, "127.0.0.9");
    await ready;
    await destroyDht(node);
  }
}

/** Records when each testnet node stores an announce of `infoHash`; call the result to stop. */
function watchStores(infoHash: Buffer, stored: Array<{ node: number; at: number }>): () => void {
  const listeners = net.nodes.map((node, i) => {
    const listener = (_peer: unknown, hash: Buffer) => {
      if (hash.equals(infoHash)) stored.push({ node: i, at: performance.now() });
    };
    node.on("announce", listener);
    return () => node.off("announce", listener);
  });
  return () => listeners.forEach((off) => off());
}

let infoHash: Buffer;

before(async () => {
  const probe = new Discovery({ bootstrap: false, host: "127.0.0.1" });
  infoHash = probe.infoHashOf(TOPIC);
  await probe.destroy();
});
// A fresh testnet each: queries that timed out in one test may have evicted its departed nodes.
beforeEach(async () => {
  net = await createDhtTestnet(6);
});
afterEach(async () => {
  await net.destroy();
});

describe("eager announce", { timeout: 40_000 }, () => {
  it("stores the server on live nodes before its lookup's queries to departed nodes time out, once per node, and says so then", async () => {
    await departNear(infoHash, 1);
    const stored: Array<{ node: number; at: number }> = [];
    const unwatch = watchStores(infoHash, stored);
    const dht = await net.createNode("127.0.0.2", { timeout: RPC_TIMEOUT_MS });
    const timers = new TimerGroup(systemClock);
    try {
      const announce = eagerAnnounce(dht, timers)!;
      const start = performance.now();
      let early: { nodes: number; at: number } | undefined;
      const ended = await new Promise<{ err: Error | null; nodes: number | undefined; at: number }>((resolve) =>
        announce(
          infoHash,
          9000,
          (err, nodes) => resolve({ err, nodes, at: performance.now() }),
          (nodes) => (early ??= { nodes, at: performance.now() }),
        ),
      );
      assert.equal(ended.err, null);
      assert.ok(ended.at - start >= RPC_TIMEOUT_MS * 0.9, `the lookup ended after ${Math.round(ended.at - start)} ms: it did not wait on the departed nodes, so this test shows nothing`);
      assert.ok(stored.length >= 1, "no live node stored the announce");
      // No query of the lookup can time out before RPC_TIMEOUT_MS from start: a store before that did not wait on the departed nodes.
      const first = Math.min(...stored.map((s) => s.at)) - start;
      assert.ok(first < RPC_TIMEOUT_MS, `first node stored the server ${Math.round(first)} ms after start, the announce's lookup ended ${Math.round(ended.at - start)} ms after start`);
      assert.ok(early, "the announce never said that nodes held it before its end");
      assert.ok(early.nodes >= 1 && early.at - start < RPC_TIMEOUT_MS, `${early.nodes} nodes reported ${Math.round(early.at - start)} ms after start`);
      const perNode = new Map<number, number>();
      for (const s of stored) perNode.set(s.node, (perNode.get(s.node) ?? 0) + 1);
      for (const [node, count] of perNode) assert.equal(count, 1, `node ${node} got ${count} announce_peer for one announce`);
    } finally {
      unwatch();
      await destroyDht(dht);
    }
  });

  it("a server's `announced` event and join callback come once live nodes hold it, not when its lookup ends; a client then finds it", async () => {
    await departNear(infoHash, 1);
    const server = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.2", timeout: RPC_TIMEOUT_MS, fastInterval: 5000, slowInterval: 60_000, lookupTimeout: 10_000 });
    // The premise: a lookup of the topic from a fresh node queries the departed nodes and waits on them.
    const probe = await net.createNode("127.0.0.4", { timeout: RPC_TIMEOUT_MS });
    try {
      const start = performance.now();
      const at = (p: Promise<unknown>) => p.then(() => performance.now() - start);
      const joined = new Promise<void>((resolve, reject) => server.join(TOPIC, 9000, (err) => (err ? reject(err) : resolve())));
      const [announced, joinedAt, lookedUp] = await Promise.all([
        waitForEvent<[string, number, number]>(server, "announced", 10_000).then(async (args) => ({ args, at: performance.now() - start })),
        at(joined),
        at(new Promise<void>((resolve) => probe.lookup(infoHash, () => resolve()))),
      ]);
      assert.equal(announced.args[1], 9000);
      assert.ok(announced.args[2] >= 1, `the announce reached ${announced.args[2]} nodes`);
      assert.ok(lookedUp >= RPC_TIMEOUT_MS * 0.9, `a lookup of the topic ended after ${Math.round(lookedUp)} ms: nothing waited on the departed nodes, so this test shows nothing`);
      assert.ok(announced.at < RPC_TIMEOUT_MS, `announced ${Math.round(announced.at)} ms after join, a lookup of the topic ended at ${Math.round(lookedUp)} ms`);
      assert.ok(joinedAt < RPC_TIMEOUT_MS, `the join callback came ${Math.round(joinedAt)} ms after join`);
      const client = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.3", timeout: RPC_TIMEOUT_MS });
      try {
        client.join(TOPIC);
        const [, peer] = await waitForEvent<[string, { host: string; port: number }]>(client, "peer", 10_000);
        assert.deepEqual(peer, { host: "127.0.0.2", port: 9000 });
      } finally {
        await client.destroy();
      }
    } finally {
      await Promise.all([server.destroy(), destroyDht(probe)]);
    }
  });

  it("falls back to bittorrent-dht's own announce when its internals are not where version 11 keeps them", () => {
    const timers = new TimerGroup(systemClock);
    assert.equal(eagerAnnounce({} as DHT, timers), undefined);
    assert.equal(eagerAnnounce({ _closest: () => undefined, _rpc: { query: () => undefined } } as unknown as DHT, timers), undefined);
  });
});
