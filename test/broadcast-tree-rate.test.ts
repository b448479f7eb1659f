/**
 * The broadcast tree under overlapping broadcasts: 100 servers on the
 * simulator's in-memory mesh (sim/, docs/simulator.md) with puts 20 ms
 * apart (50 per second), so that several records cross the tree at once.
 * Before the cycle rule (src/node/broadcast/link-weight.ts) each of them cut
 * a different link of the same cycle: the tree fell apart, GRAFTs rebuilt
 * it with new cycles, and a put cost about 1.7 copies per server.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testMesh } from "./helpers/sim-mesh.js";

describe("broadcast tree at 50 puts per second over 100 servers", { timeout: 300_000 }, () => {
  it("stays a spanning tree: about one copy per server and every put on every server by relay", async () => {
    const m = await testMesh(100, 20);
    try {
      await m.puts(20, "warm", 20, 1000);
      const hashes = await m.puts(200, "p", 20, 3000);
      const live = m.mesh.liveServers;
      let copies = 0;
      for (const h of hashes) {
        const trace = m.tracker.puts.get(h);
        assert.ok(trace, `put ${h.slice(0, 8)} was tracked`);
        for (const s of live) {
          const at = trace.at.get(s.index);
          assert.ok(at && at.storedAt >= 0 && at.byRelay, `server ${s.index} got put ${h.slice(0, 8)} by relay`);
          copies += at.copies;
        }
      }
      const perServer = copies / (hashes.length * live.length);
      const eager = live.reduce((a, s) => a + s.db.broadcast.links.eager, 0) / live.length;
      const grafts = live.reduce((a, s) => a + s.db.broadcast.stats.grafts, 0);
      assert.ok(perServer <= 1.3, `${perServer.toFixed(3)} copies per server (a spanning tree: 1)`);
      assert.ok(eager >= 1.9 && eager <= 2.2, `${eager.toFixed(2)} tree links per server (a spanning tree: 2 × 99/100)`);
      assert.ok(grafts <= live.length, `${grafts} GRAFTs (a tree that stays whole needs few)`);
    } finally {
      await m.close();
    }
  });
});
