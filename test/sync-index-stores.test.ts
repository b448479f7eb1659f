/**
 * The sync index negentropy runs over (src/node/sync/sync-index.ts), on
 * every store: kept on every merge, rebuilt from the records after an
 * unclean close, reopened as is after a clean one (the protocol itself:
 * negentropy.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Item, compareBounds } from "../src/node/sync/negentropy-codec.js";
import { type SyncIndex, itemId } from "../src/node/sync/sync-index.js";
import { signedRecords } from "./helpers/signed-records.js";
import { closeIndexed, indexOn, memoryStores, withLevelStores } from "./helpers/sync-index-rig.js";

describe("sync index", () => {
  async function items(index: SyncIndex): Promise<Item[]> {
    const out: Item[] = [];
    for await (const item of index.scan({ t: 0, id: "" }, { t: Infinity, id: "" })) out.push(item);
    return out;
  }

  it("is kept on every merge (a replaced version leaves the index) and rebuilt from the records after an unclean close", () =>
    withLevelStores("tooldb-sync-index-", async (level) => {
      const [v1, v2] = [await signedRecords(50, "k/", 1_000_000), await signedRecords(10, "k/", 2_000_000, "v2")];
      let { records, index } = await indexOn(level, "db");
      for (const record of [...v1, ...v2]) {
        const before = (await records.get(record.k)) ?? undefined;
        await records.put(record.k, JSON.stringify(record));
        await index.update(before ? JSON.parse(before) : undefined, record);
      }
      const expected = [...v2, ...v1.slice(10)].map((r) => ({ t: r.t, id: itemId(r) })).sort(compareBounds);
      assert.deepEqual(await items(index), expected);
      assert.equal(index.size, 50);
      assert.equal(await index.keyOf(itemId(v2[3]!)), "k/3");
      assert.equal(await index.keyOf(itemId(v1[3]!)), undefined, "the replaced version is gone");
      // Unclean: the records store closes, the index store is left marked open (as after a crash).
      await records.close();
      await index.store.close();
      ({ records, index } = await indexOn(level, "db"));
      assert.deepEqual(await items(index), expected);
      assert.equal(index.size, 50);
      await closeIndexed({ records, index });
      // Clean: reopened without a rebuild, count kept.
      ({ records, index } = await indexOn(level, "db"));
      assert.equal(index.size, 50);
      assert.deepEqual(await items(index), expected);
      await closeIndexed({ records, index });
    }));

  it("works the same over MemoryStore", async () => {
    const { records, index } = await indexOn(memoryStores, "mem");
    const recs = await signedRecords(20, "m/", 5_000_000);
    for (const r of recs) {
      await records.put(r.k, JSON.stringify(r));
      await index.update(undefined, r);
    }
    assert.deepEqual(await items(index), recs.map((r) => ({ t: r.t, id: itemId(r) })).sort(compareBounds));
    await closeIndexed({ records, index });
  });
});
