/**
 * Reading the reconciliation index from its store (building the bucket sums
 * on a cold index, a run of uncached buckets) lets other work in every
 * TURN_MS, whether or not the store's pages wait for I/O (review: a cold
 * MemoryStore index of 300,000 items was summed in one turn of the event
 * loop, 226-575 ms, on both sides of a run: its pages resolve in microtasks
 * only). Counted with a clock of the test's own that moves 1 ms each time it
 * is read, not wall time.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createLogger } from "../src/base/logger.js";
import { LevelStore, MemoryStore, type ToolDbStorageAdapter } from "../src/stores/index.js";
import { Accumulator, INFINITY_BOUND, MIN_BOUND } from "../src/node/sync/negentropy-codec.js";
import { Turns } from "../src/node/sync/negentropy-bounds.js";
import { RangeSums } from "../src/node/sync/range-sums.js";
import { SyncIndex } from "../src/node/sync/sync-index.js";

const ITEMS = 20_000;

/** An index store holding ITEMS items (written as the index writes them), and the sums over it with a counting clock. */
async function countedSums(store: ToolDbStorageAdapter): Promise<{ sums: RangeSums; index: SyncIndex; turns: Turns[] }> {
  await store.ready;
  const ops = [];
  for (let i = 0; i < ITEMS; i++) {
    const id = createHash("sha256").update(String(i)).digest("hex");
    ops.push({ type: "put" as const, key: `t${(1_000_000 + i).toString(16).padStart(14, "0")}${id}`, value: i.toString(16) });
  }
  await store.write(ops);
  const index = new SyncIndex(store, new MemoryStore(undefined, "turns.records"), createLogger("test:range-sums-turns"));
  let now = 0;
  const turns: Turns[] = [];
  const pacer = () => {
    const t = new Turns(undefined, () => now++);
    turns.push(t);
    return t;
  };
  return { sums: new RangeSums({ scanPages: (lower, upper) => index.scanStorePages(lower, upper) }, pacer), index, turns };
}

const yields = (turns: Turns[]) => turns.reduce((n, t) => n + t.yields, 0);

describe("range sums' turns", () => {
  for (const kind of ["MemoryStore", "LevelDB"] as const) {
    it(`a cold ${kind} index is summed whole over many turns, with the same fingerprint`, { timeout: 60_000 }, async () => {
      const dir = await mkdtemp(join(tmpdir(), "tooldb-sums-turns-"));
      const store = kind === "LevelDB" ? new LevelStore(undefined, join(dir, "index")) : new MemoryStore(undefined, "turns.index");
      try {
        const { sums, index, turns } = await countedSums(store);
        const acc = new Accumulator();
        await sums.sum(MIN_BOUND, INFINITY_BOUND, acc);
        const scanned = new Accumulator();
        for await (const item of index.scanStore(MIN_BOUND, INFINITY_BOUND)) scanned.add(item.id);
        assert.equal(acc.count, ITEMS);
        assert.equal(acc.fingerprint(), scanned.fingerprint());
        // Before: the buckets were built in one go (no turn handed over; a MemoryStore's pages never wait).
        // A page of 256 items a clock read: about ITEMS / 256 / TURN_MS turns.
        assert.ok(yields(turns) >= 5, `building the sums handed over ${yields(turns)} turns`);

        // Reading uncached buckets (runs of them, each by one iterator) hands over turns too.
        const before = yields(turns);
        let read = 0;
        for await (const page of sums.scanPages(MIN_BOUND, INFINITY_BOUND)) read += page.length;
        assert.equal(read, ITEMS);
        assert.ok(yields(turns) - before >= 5, `reading the buckets handed over ${yields(turns) - before} turns`);
      } finally {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
