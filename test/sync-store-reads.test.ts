/**
 * What a responder's store reads cost an asker (found in review of the
 * range-sync cost fix): a fingerprint or split of a range in a bucket whose
 * items are not cached reads the whole bucket, and 8 buckets ahead, from
 * the index store (range-sums.ts), but only the items inside the range were
 * charged. A message of one tiny range per 8 buckets made a server of
 * 200,000 records read its whole index from LevelDB (about 270 ms) for
 * 1,536 items of charged work (192 ranges), about 3,300 such messages per
 * address and window. Every item read from the store now counts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { createLogger } from "../src/base/logger.js";
import { MemoryStore } from "../src/index.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { type Bound, BoundCoder, ByteWriter, INFINITY_BOUND, MIN_BOUND } from "../src/node/sync/negentropy-codec.js";
import { Reconciler } from "../src/node/sync/negentropy.js";
import { RANGE_WORK } from "../src/node/sync/negentropy-bounds.js";
import { SyncIndex } from "../src/node/sync/sync-index.js";

const EMPTY_FINGERPRINT = createHash("sha256").update(Buffer.alloc(33)).digest("hex").slice(0, 32);

/** A message of one empty range at the start of every `step`-th bucket (skips between). */
function spread(bounds: Bound[], step: number): { m: Uint8Array; ranges: number } {
  const w = new ByteWriter();
  w.byte(0x61);
  const coder = new BoundCoder();
  let ranges = 0;
  for (let k = 0; k < bounds.length; k += step) {
    coder.write(w, bounds[k]!);
    w.varint(0);
    // Before the bucket's anchor item (its id begins "00…"): empty.
    coder.write(w, { t: bounds[k]!.t, id: "00" });
    w.varint(1);
    w.hex(EMPTY_FINGERPRINT);
    ranges += 2;
  }
  return { m: w.view().slice(), ranges };
}

describe("a responder's store reads", () => {
  it("are charged to the asker: ranges that each make it read 8 buckets from the store cost what was read", { timeout: 60_000 }, async () => {
    const store = new MemoryStore(undefined, "reads.sync");
    let read = 0;
    const keyPages = store.keyPages.bind(store);
    store.keyPages = async function* (options) {
      for await (const page of keyPages(options)) {
        read += page.length;
        yield page;
      }
    };
    const index = new SyncIndex(store, new MemoryStore(undefined, "reads"), createLogger("test:sync-store-reads"));
    await index.open();
    const hash = (j: number) => createHash("sha256").update(String(j)).digest("hex");
    for (let i = 0; i < 20_000; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => ({ previous: undefined, record: { k: `k/${i + j}`, h: hash(i + j), t: 1_000_000 + 10 * (i + j) } as ToolDbRecord }));
      await index.updateMany(batch);
    }
    const bounds = (await index.splitPoints(MIN_BOUND, INFINITY_BOUND, 1e9))!;
    assert.ok(bounds.length >= 40, `${bounds.length + 1} buckets`);
    read = 0; // building the buckets read the index once: nothing of it is cached
    const { m, ranges } = spread(bounds, 8);
    const responder = new Reconciler(index, 0, false);
    await responder.reconcile(m);
    assert.ok(read >= 10_000, `the store read ${read} items`);
    // Before: ranges only (RANGE_WORK each), whatever the store read.
    assert.ok(responder.work >= read + RANGE_WORK * ranges, `work ${responder.work} for ${ranges} ranges and ${read} items read from the store`);
    assert.equal(responder.scanned, 0, "no item lies in those ranges");
    await index.close();
  });
});
