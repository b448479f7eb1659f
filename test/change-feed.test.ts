/**
 * The change feed of the reconciliation index (src/node/sync/change-feed.ts) on
 * real stores: numbering survives a clean close, restarts with a new epoch
 * after an unclean one, a replaced version leaves the feed, an entry being
 * written holds the head back, and checkpoints stay bounded; a peer's
 * sign-up retries (sign-up-retries.ts) live and go with its checkpoint.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_CHECKPOINTS } from "../src/node/sync/change-feed.js";
import { itemId } from "../src/node/sync/sync-index.js";
import { signedRecords } from "./helpers/signed-records.js";
import { closeIndexed, indexOn, memoryStores, withLevelStores } from "./helpers/sync-index-rig.js";

describe("change feed", () => {
  it("numbers every stored version; a replaced one leaves the feed; numbering survives a clean close and restarts after an unclean one", () =>
    withLevelStores("tooldb-change-feed-", async (level) => {
      const [v1, v2] = [await signedRecords(30, "k/", 1_000_000), await signedRecords(5, "k/", 2_000_000, "v2")];
      let { records, index } = await indexOn(level, "db");
      for (const r of v1) {
        await records.put(r.k, JSON.stringify(r));
        await index.update(undefined, r);
      }
      assert.equal(index.feed.head, 30);
      const epoch = index.feed.epoch;
      for (const [i, r] of v2.entries()) {
        await records.put(r.k, JSON.stringify(r));
        await index.update(v1[i], r);
      }
      // 35 numbers handed out; the 5 replaced versions left the feed, their new versions came last.
      assert.equal(index.feed.head, 35);
      const all = await index.feed.page(0, 1000);
      assert.equal(all.ids.length, 30);
      assert.deepEqual(all.ids.slice(-5), v2.map(itemId));
      assert.deepEqual(all.ids.slice(0, 25), v1.slice(5).map(itemId));
      // Paging: after 30 only the last five; pages of 2 walk the rest with `more`.
      const tail = await index.feed.page(30, 1000);
      assert.deepEqual(tail, { ids: v2.map(itemId), next: 35, more: false });
      const first = await index.feed.page(30, 2);
      assert.equal(first.ids.length, 2);
      assert.equal(first.more, true);
      assert.deepEqual((await index.feed.page(35, 10)).ids, []);
      await index.feed.setCheckpoint("peer-1", { epoch: "e1", seq: 7 }, 1);
      await index.feed.setRetries("peer-1", ["a1", "b2"]);
      await closeIndexed({ records, index });

      ({ records, index } = await indexOn(level, "db"));
      assert.equal(index.feed.epoch, epoch, "a clean close keeps the numbering");
      assert.equal(index.feed.head, 35);
      assert.deepEqual(await index.feed.checkpoint("peer-1"), { epoch: "e1", seq: 7 });
      assert.deepEqual(await index.feed.retries("peer-1"), ["a1", "b2"], "sign-up retries survive a restart with their checkpoint");
      await records.close(); // the index is left open: an unclean close
      await index.store.close();

      ({ records, index } = await indexOn(level, "db"));
      assert.notEqual(index.feed.epoch, epoch, "a rebuilt index starts a new numbering");
      assert.equal(index.feed.head, 30);
      assert.equal(await index.feed.checkpoint("peer-1"), undefined, "checkpoints go with the old numbering");
      assert.deepEqual(await index.feed.retries("peer-1"), [], "and so do their retries");
      await closeIndexed({ records, index });
    }));

  it("a number whose entry is still being written holds the head back, so a checkpoint never skips a change", async () => {
    const { records, index } = await indexOn(memoryStores, "mem");
    const feed = index.feed;
    const first = feed.reserve();
    const second = feed.reserve();
    feed.written(second);
    assert.equal(feed.head, first - 1, "the later entry is written, the earlier is not: the head stays before it");
    assert.deepEqual((await feed.page(0, 10)).next, first - 1);
    feed.written(first);
    assert.equal(feed.head, second);
    await closeIndexed({ records, index });
  });

  it("keeps at most MAX_CHECKPOINTS peer checkpoints, dropping the least recently updated", async () => {
    const { records, index } = await indexOn(memoryStores, "cps");
    for (let i = 0; i <= MAX_CHECKPOINTS; i++) {
      await index.feed.setCheckpoint(`p${i}`, { epoch: "e", seq: i }, 1000 + i);
      if (i < 2) await index.feed.setRetries(`p${i}`, ["x"]);
    }
    assert.equal(await index.feed.checkpoint("p0"), undefined);
    assert.deepEqual(await index.feed.retries("p0"), [], "an evicted checkpoint takes its sign-up retries along");
    assert.deepEqual(await index.feed.retries("p1"), ["x"]);
    assert.deepEqual(await index.feed.checkpoint("p1"), { epoch: "e", seq: 1 });
    assert.deepEqual(await index.feed.checkpoint(`p${MAX_CHECKPOINTS}`), { epoch: "e", seq: MAX_CHECKPOINTS });
    await index.feed.forgetCheckpoints();
    assert.deepEqual(await index.feed.retries("p1"), [], "forgotten checkpoints too");
    await closeIndexed({ records, index });
  });
});
