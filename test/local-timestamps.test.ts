/**
 * The timestamps a node gives its own writes: strictly increasing per key
 * (two writes of a key in one millisecond are ordered by when they were
 * made, not by the hash tie-break), and never ahead of the clock for a
 * burst of distinct keys (a node that ran one above its last write across
 * keys drifted into the future, was refused and banned).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryStore, ToolDb } from "../src/index.js";
import { ManualClock } from "./helpers/manual-clock.js";

describe("timestamps of a node's own writes", () => {
  it("a burst of distinct keys in one millisecond all take the clock's time; writes of one key still increase", { timeout: 60_000 }, async () => {
    const now = Date.now();
    const clock = new ManualClock(now);
    const db = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "local-timestamps", storageAdapter: MemoryStore, clock });
    try {
      await db.ready;
      const keys = Array.from({ length: 5000 }, (_, i) => `burst-${i}`);
      for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((k, j) => db.putData(k, i + j)));
      const times = await Promise.all(keys.map(async (k) => (await db.records.get(k))!.t));
      assert.deepEqual([...new Set(times)], [now], "no write ran ahead of the clock");

      for (let n = 0; n < 3; n++) await db.putData("same", n);
      assert.equal((await db.records.get("same"))!.t, now + 2);
      // Concurrent writes of one key: each a millisecond above the last issued, the last made wins.
      await Promise.all([10, 11, 12].map((v) => db.putData("hot", v)));
      const hot = (await db.records.get("hot"))!;
      assert.deepEqual([hot.v, hot.t], [12, now + 2]);
      // A key written before, now written again after the clock moved on: the clock's time.
      clock.advance(1000);
      await db.putData("burst-7", "again");
      assert.equal((await db.records.get("burst-7"))!.t, now + 1000);
    } finally {
      await db.close();
    }
  });
});
