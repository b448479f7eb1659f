/**
 * The broadcast tree (src/node/broadcast) on a simulated mesh of 30 servers:
 * the shipping ToolDb nodes on the simulator's in-memory transport and
 * virtual clock (sim/, docs/simulator.md). Copies are counted on the links,
 * signature checks by the user adapter.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomId } from "../src/base/random.js";
import { parseMessage } from "../src/records/parse-message.js";
import { isToolDbError } from "../src/base/errors.js";
import { TREE_CAPABILITY } from "../src/node/broadcast/broadcast-tree.js";
import { testMesh, type TestMesh } from "./helpers/sim-mesh.js";
import type { SimNode } from "../sim/mesh.js";

const TIMEOUT = 600_000;

function copiesPerServer(mesh: TestMesh, hashes: string[]): number {
  const live = mesh.mesh.liveServers;
  let copies = 0;
  for (const h of hashes) for (const s of live) copies += mesh.tracker.puts.get(h)?.at.get(s.index)?.copies ?? 0;
  return copies / (hashes.length * live.length);
}

/** Asserts every live server stored every put, and (with `byRelay`) that a put frame brought it, not anti-entropy. */
function assertEverywhere(mesh: TestMesh, hashes: string[], byRelay: boolean): void {
  for (const h of hashes) {
    const trace = mesh.tracker.puts.get(h);
    assert.ok(trace, `put ${h.slice(0, 8)} was tracked`);
    for (const s of mesh.mesh.liveServers) {
      const at = trace.at.get(s.index);
      assert.ok(at && at.storedAt >= 0, `server ${s.index} stored put ${h.slice(0, 8)}`);
      if (byRelay && trace.liveAtIssue.has(s.index)) assert.ok(at.byRelay, `server ${s.index} got put ${h.slice(0, 8)} by relay`);
    }
  }
}

const sum = (nodes: SimNode[], f: (n: SimNode) => number) => nodes.reduce((a, n) => a + f(n), 0);

describe("broadcast tree on a simulated mesh of 30 servers", { timeout: TIMEOUT }, () => {
  it("every put reaches every live server by relay; once the tree formed, a put costs about one copy per server (flooding: one per link)", async () => {
    const tree = await testMesh(30, 5);
    const flood = await testMesh(30, 5, () => ({ broadcast: { mode: "flood" } }));
    try {
      const [treeWarm, floodWarm] = [await tree.puts(10, "warm"), await flood.puts(10, "warm")];
      const [treePuts, floodPuts] = [await tree.puts(20, "p"), await flood.puts(20, "p")];
      assertEverywhere(tree, [...treeWarm, ...treePuts], true);
      assertEverywhere(flood, [...floodWarm, ...floodPuts], true);
      // Every server link carries the tree's capability and starts eager; pruning leaves about a spanning tree.
      for (const s of tree.servers) for (const p of s.db.network.peers.filter((x) => x.isServer)) assert.ok(p.caps.has(TREE_CAPABILITY));
      const eager = sum(tree.servers, (s) => s.db.broadcast.links.eager) / tree.servers.length;
      assert.ok(eager < 2.5, `tree links per server ${eager.toFixed(2)} (a spanning tree has 2 × 29/30)`);
      const treeCopies = copiesPerServer(tree, treePuts);
      const floodCopies = copiesPerServer(flood, floodPuts);
      assert.ok(treeCopies <= 1.5, `tree: ${treeCopies.toFixed(2)} copies per server`);
      assert.ok(floodCopies > 4, `flood: ${floodCopies.toFixed(2)} copies per server`);
      assert.ok(sum(tree.servers, (s) => s.db.broadcast.stats.prunes) > 0, "the first puts pruned redundant links");
    } finally {
      await tree.close();
      await flood.close();
    }
  });

  it("the tree repairs itself after a server on it dies: the cut-off part GRAFTs from lazy links, and puts reach every live server by relay", async () => {
    const m = await testMesh(30, 4);
    try {
      await m.puts(10, "before");
      // The busiest tree node that no client writes to: its subtree is cut off when it dies.
      const clientHomes = new Set(m.clients.flatMap((c) => c.db.network.peers.map((p) => p.record.port)));
      const victim = [...m.servers].filter((s) => !clientHomes.has(s.port)).sort((a, b) => b.db.broadcast.links.eager - a.db.broadcast.links.eager)[0]!;
      assert.ok(victim.db.broadcast.links.eager >= 2, "the victim is an inner node of the tree");
      const graftsBefore = sum(m.servers, (s) => s.db.broadcast.stats.grafts);
      let newLinks = 0;
      for (const s of m.servers) s.db.on("peer-connect", (info) => void (info.isServer && newLinks++));
      await m.mesh.kill(victim);
      const after = await m.puts(10, "after");
      // Servers cut off get them by GRAFT, or by the links the mesh's degree bounds open instead (and their catch-up).
      assertEverywhere(m, after, false);
      const grafted = sum(m.mesh.liveServers, (s) => s.db.broadcast.stats.grafts) > graftsBefore;
      assert.ok(grafted || newLinks > 0, "lazy links were grafted onto the tree, or new links replaced the dead server's");
      // Repaired: later puts are back to about one copy per server, all by relay.
      const later = await m.puts(10, "later");
      assertEverywhere(m, later, true);
      const copies = copiesPerServer(m, later);
      assert.ok(copies <= 1.5, `${copies.toFixed(2)} copies per server after the repair`);
    } finally {
      await m.close();
    }
  });

  it("a duplicate is dropped before its signature is checked: one check per server and put, however many copies arrive", async () => {
    const flood = await testMesh(30, 3, () => ({ broadcast: { mode: "flood" } }));
    const tree = await testMesh(30, 3);
    try {
      for (const m of [flood, tree]) {
        // The tree's first puts flood too (every link starts eager).
        const hashes = await m.puts(5, "dup");
        assertEverywhere(m, hashes, true);
        let copies = 0;
        for (const h of hashes) {
          for (const s of m.mesh.liveServers) {
            assert.equal(m.mesh.world.verifications.of(s.db, h), 1, `server ${s.index}: one signature check of ${h.slice(0, 8)}`);
            copies += m.tracker.puts.get(h)!.at.get(s.index)!.copies;
          }
        }
        assert.ok(copies > 2 * hashes.length * m.mesh.liveServers.length, "many more copies arrived than were checked");
      }
      assert.ok(sum(tree.servers, (s) => s.db.broadcast.stats.duplicates) > 0);
    } finally {
      await flood.close();
      await tree.close();
    }
  });

  it("a forged copy sent ahead of the real record on a tree link is refused, and does not make the real record a duplicate", async () => {
    const m = await testMesh(30, 1);
    try {
      await m.puts(5, "warm");
      // Z writes; Y is two hops from Z; X, a tree peer of Y, is the attacker.
      const z = m.servers[0]!;
      const zPorts = new Set(z.db.network.peers.map((p) => p.record.port));
      const y = m.servers.find((s) => s !== z && !zPorts.has(s.port));
      assert.ok(y, "a server two hops from Z");
      const onTree = y.db.network.peers.filter((p) => p.isServer && y.db.broadcast.carries(p));
      const x = m.servers.find((s) => s !== z && onTree.some((p) => p.clientId === s.db.network.getClientAddress()));
      assert.ok(x, "a tree peer of Y");
      const xId = x.db.network.getClientAddress();
      const refusedFrom: Array<string | undefined> = [];
      y.db.on("refused", (e) => refusedFrom.push(e.peer));
      let hash = "";
      // As soon as Z stored its write, X sends Y a tree put with the real hash and a broken signature.
      z.db.once("put", ({ data: record }) => {
        hash = record.h;
        const forged = { ...record, s: (record.s[0] === "0" ? "1" : "0") + record.s.slice(1) };
        x.db.network.session(y.db.network.getClientAddress())!.sendRaw(JSON.stringify({ type: "put", id: randomId(), to: [xId], data: forged, r: 1, o: xId }));
      });
      await z.db.anonSignIn();
      void z.db.putData("forged-ahead", { real: true });
      await m.mesh.clock.advance(3000);
      assert.ok(hash, "Z wrote");
      assert.ok(refusedFrom.includes(xId), "Y refused the forged copy from X");
      assert.deepEqual((await y.db.records.get("forged-ahead"))?.v, { real: true }, "Y stored the genuine record");
      assert.equal(m.mesh.world.verifications.of(y.db, hash), 2, "Y checked the forged copy and then the genuine one");
    } finally {
      await m.close();
    }
  });

  it("links to servers without the tree (an older tooldb-dht) keep the plain relay, and those servers get every put", async () => {
    const older = new Set([3, 11, 17, 22, 28]);
    const m = await testMesh(30, 4, (i) => (older.has(i) ? { broadcast: { mode: "flood" } } : {}));
    try {
      const hashes = await m.puts(20, "mixed");
      assertEverywhere(m, hashes, true);
      for (const s of m.servers) {
        for (const p of s.db.network.peers.filter((x) => x.isServer)) {
          const both = !older.has(s.index) && !older.has(p.record.port - 20_000);
          assert.equal(s.db.broadcast.carries(p), both, `server ${s.index} -> ${p.port}: on the tree only between two tree servers`);
        }
      }
      for (const i of older) assert.deepEqual(m.servers[i]!.db.capabilities().includes(TREE_CAPABILITY), false);
    } finally {
      await m.close();
    }
  });

  it("ihave / graft / prune frames are validated; malformed tree fields of a put are dropped", () => {
    const h = "ab".repeat(32);
    assert.deepEqual((parseMessage(JSON.stringify({ type: "ihave", id: "1", hs: [h] })) as { hs: string[] }).hs, [h]);
    for (const bad of [{ type: "ihave", id: "1", hs: ["xyz"] }, { type: "graft", id: "1", hs: Array(1025).fill(h) }, { type: "graft", id: "1" }]) {
      assert.throws(() => parseMessage(JSON.stringify(bad)), (err) => isToolDbError(err) && err.code === "BAD_MESSAGE");
    }
    assert.equal(parseMessage(JSON.stringify({ type: "prune", id: "1" }))?.type, "prune");
    const put = parseMessage(JSON.stringify({ type: "put", id: "1", data: { k: "a" }, r: -1, o: 5 })) as { r?: unknown; o?: unknown };
    assert.equal(put.r, undefined);
    assert.equal(put.o, undefined);
  });
});
