/**
 * The streamed rebuild of the reconciliation index (src/node/sync/sync-index.ts)
 * after an unclean close gives exactly what incremental indexing gave: the
 * same items, the same fingerprints (from the range-sums cache and from a
 * scan), the same id → key map, and a change feed holding every item once
 * under a new epoch.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createLogger } from "../src/base/logger.js";
import { seededRandom } from "../src/base/random.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { LevelStore } from "../src/index.js";
import { Accumulator, type Bound, INFINITY_BOUND, type Item, MIN_BOUND } from "../src/node/sync/negentropy-codec.js";
import { SyncIndex, itemId } from "../src/node/sync/sync-index.js";
import { signedRecords } from "./helpers/signed-records.js";

interface Snapshot {
  size: number;
  items: Item[];
  /** "count fingerprint" per range, from the cached sums and from a scan. */
  cached: string[];
  scanned: string[];
  keys: (string | undefined)[];
  feed: string[];
}

async function snapshot(index: SyncIndex, cuts: Bound[]): Promise<Snapshot> {
  const items: Item[] = [];
  for await (const item of index.scan(MIN_BOUND, INFINITY_BOUND)) items.push(item);
  const bounds = [MIN_BOUND, ...cuts, INFINITY_BOUND];
  const cached: string[] = [];
  const scanned: string[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    for (const j of [i + 1, bounds.length - 1]) {
      const fromSums = new Accumulator();
      await index.sum(bounds[i]!, bounds[j]!, fromSums);
      cached.push(`${fromSums.count} ${fromSums.fingerprint()}`);
      const fromScan = new Accumulator();
      for await (const item of index.scan(bounds[i]!, bounds[j]!)) fromScan.add(item.id);
      scanned.push(`${fromScan.count} ${fromScan.fingerprint()}`);
    }
  }
  const keys = await Promise.all(items.map((item) => index.keyOf(item.id)));
  const page = await index.feed.page(0, 1_000_000);
  assert.equal(page.more, false);
  return { size: index.size, items, cached, scanned, keys, feed: [...page.ids].sort() };
}

describe("sync index rebuild", () => {
  it("after an unclean close of a few thousand records (replaced versions, CRDT heads, junk) equals incremental indexing", { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "tooldb-sync-rebuild-"));
    const open = async () => {
      const records = new LevelStore(undefined, join(dir, "db"));
      const index = new SyncIndex(new LevelStore(undefined, join(dir, "db.sync")), records, createLogger("test:sync-rebuild"));
      await index.open();
      return { records, index };
    };
    try {
      const [v1, v2, docs, heads] = await Promise.all([
        signedRecords(3000, "k/", 1_000_000),
        signedRecords(400, "k/", 2_000_000, "v2"),
        signedRecords(60, "doc/", 3_000_000),
        signedRecords(120, "head/", 3_500_000),
      ]);
      // CRDT documents keep heads beside the record; a new head set is a new version (a new item id) of the same key.
      const withHeads = (doc: ToolDbRecord, n: number) => ({ ...doc, heads: heads.slice(n, n + 1 + (n % 3)) });
      const writes: ToolDbRecord[] = [...v1, ...docs.map((d, i) => withHeads(d, i)), ...v2, ...docs.slice(0, 30).map((d, i) => withHeads(d, 60 + i))];
      const random = seededRandom(11);
      for (let i = writes.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        // Shuffle only among the first versions, so that replacements still come after what they replace.
        if (i < v1.length + docs.length && j < v1.length + docs.length) [writes[i], writes[j]] = [writes[j]!, writes[i]!];
      }

      let { records, index } = await open();
      const cuts = Array.from({ length: 6 }, (_, n) => ({ t: 1_000_000 + 500 * n + 250, id: "" }));
      await index.sum(MIN_BOUND, INFINITY_BOUND, new Accumulator()); // the sums cache exists from the start: every write updates it
      for (const record of writes) {
        const raw = await records.get(record.k);
        await records.put(record.k, JSON.stringify(record));
        await index.update(raw === undefined ? undefined : (JSON.parse(raw) as ToolDbRecord), record);
      }
      await records.put("junk", "not a record"); // unreadable values are skipped, as incremental indexing never saw them
      const incremental = await snapshot(index, cuts);
      assert.equal(incremental.size, 3060);
      assert.equal(incremental.items.length, 3060);
      assert.ok(incremental.items.some((item) => item.id === itemId(withHeads(docs[0]!, 60))), "the newer head set is indexed");
      assert.ok(!incremental.items.some((item) => item.id === itemId(withHeads(docs[0]!, 0))), "the replaced head set is not");
      const epoch = index.feed.epoch;
      await index.feed.setCheckpoint("peer-1", { epoch: "e1", seq: 9 }, 1);

      // Unclean: the index store closes without its clean mark, as after a crash,
      // here one that lost some index writes and kept entries of replaced versions.
      await index.store.close();
      await records.close();
      const damaged = new LevelStore(undefined, join(dir, "db.sync"));
      for (const item of incremental.items.slice(0, 10)) await damaged.del(`k${item.id}`);
      for (const [n, old] of v1.slice(0, 10).entries()) {
        await Promise.all([damaged.put(`t${old.t.toString(16).padStart(14, "0")}${itemId(old)}`, "1"), damaged.put(`k${itemId(old)}`, old.k), damaged.put(`s${(90_000 + n).toString(16).padStart(13, "0")}`, itemId(old))]);
      }
      await damaged.close();
      ({ records, index } = await open());
      const rebuilt = await snapshot(index, cuts);
      assert.deepEqual(rebuilt, incremental);
      assert.notEqual(index.feed.epoch, epoch, "a rebuilt index starts a new epoch");
      assert.equal(index.feed.head, 3060, "numbered 1..n afresh");
      assert.equal(await index.feed.checkpoint("peer-1"), undefined, "checkpoints went with the old numbering");

      // Merges after the rebuild keep it in step like before.
      const v3 = await signedRecords(5, "k/", 4_000_000, "v3");
      for (const record of v3) {
        const raw = await records.get(record.k);
        await records.put(record.k, JSON.stringify(record));
        await index.update(JSON.parse(raw!) as ToolDbRecord, record);
      }
      assert.equal(index.size, 3060);
      assert.equal(await index.keyOf(itemId(v3[0]!)), "k/0");
      await index.close();
      await records.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
