/**
 * Cached range sums of the reconciliation index (src/node/sync/range-sums.ts):
 * after inserts, replacements and bucket splits, the fingerprint of any
 * range from the cache equals the one from a full scan, and split points
 * cut a long range without reading it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../src/base/logger.js";
import { seededRandom } from "../src/base/random.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { MemoryStore } from "../src/index.js";
import { Accumulator, type Bound, INFINITY_BOUND, type Item, MIN_BOUND, compareBounds } from "../src/node/sync/negentropy-codec.js";
import { RangeSums, type ScanSource } from "../src/node/sync/range-sums.js";
import { MAX_BUCKET, isAnchor } from "../src/node/sync/range-buckets.js";
import { SyncIndex } from "../src/node/sync/sync-index.js";
import { sha256Hex } from "../src/crypto/sha256.js";
import { unsignedRecords } from "./helpers/signed-records.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const unhandled = collectUnhandledRejections();

/** The items of `sorted` in [lower, upper). */
function within(sorted: readonly Item[], lower: Bound, upper: Bound): Item[] {
  let [lo, hi] = [0, sorted.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBounds(sorted[mid]!, lower) < 0) lo = mid + 1;
    else hi = mid;
  }
  const out: Item[] = [];
  for (let i = lo; i < sorted.length && compareBounds(sorted[i]!, upper) < 0; i++) out.push(sorted[i]!);
  return out;
}

/** Count and fingerprint of `items`, as `cached` gives them. */
function summed(items: readonly Item[]): string {
  const acc = new Accumulator();
  for (const item of items) acc.add(item.id);
  return `${acc.count} ${acc.fingerprint()}`;
}

async function listed(items: AsyncIterable<Bound>): Promise<Bound[]> {
  const out: Bound[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function listedPages<B extends Bound>(pages: AsyncIterable<readonly B[]>): Promise<B[]> {
  const out: B[] = [];
  for await (const page of pages) out.push(...page);
  return out;
}

async function cached(index: SyncIndex, lower: Bound, upper: Bound): Promise<{ text: string; read: number }> {
  const acc = new Accumulator();
  const read = await index.sum(lower, upper, acc);
  return { text: `${acc.count} ${acc.fingerprint()}`, read };
}

describe("range sums", () => {
  it("give the same fingerprint as a scan for any range, through inserts, replacements and bucket splits, reading far less", { timeout: 120_000 }, async () => {
    const records = new MemoryStore(undefined, "sums");
    const index = new SyncIndex(new MemoryStore(undefined, "sums.sync"), records, createLogger("test:range-sums"));
    await index.open();
    const random = seededRandom(7);
    // Spread over time, then many at one end (the newest bucket must split), then newer versions of some keys.
    // The index never verifies a record: unsigned ones (signing 17,500 was most of the test's time).
    const [spread, recent, newer, during] = [
      unsignedRecords(6000, "s/", 1_000_000),
      unsignedRecords(9000, "r/", 9_000_000),
      unsignedRecords(500, "s/", 5_000_000, "v2"),
      unsignedRecords(2000, "d/", 1_000_000),
    ];
    const write = async (list: ToolDbRecord[], previous?: ToolDbRecord[]) => {
      for (let i = 0; i < list.length; i += 256) await Promise.all(list.slice(i, i + 256).map((r, j) => index.update(previous?.[i + j], r)));
    };
    await write(spread);
    const probe = async (rounds: number) => {
      const items = await listed(index.scan(MIN_BOUND, INFINITY_BOUND));
      // What the index store holds, read once a probe (nothing writes during one): every range's reference.
      // (Scanning the store again for each range, a promise an item from MemoryStore, was most of the file's time.)
      const stored = await listedPages(index.scanStorePages(MIN_BOUND, INFINITY_BOUND));
      assert.deepEqual(items, stored, "a scan lists what the store holds");
      const pick = () => items[Math.floor(random() * items.length)]!;
      for (let r = 0; r < rounds; r++) {
        const [x, y] = [pick(), random() < 0.2 ? INFINITY_BOUND : pick()];
        const [lower, upper] = compareBounds(x, y) <= 0 ? [x, y] : [y, x];
        const c = await cached(index, lower, upper);
        assert.equal(c.text, summed(within(stored, lower, upper)), `range ${JSON.stringify([lower, upper])}`);
        // Scans go through the cache of recently read buckets; they list what the store holds (a sample of
        // ranges, a page at a time: every item of a scan costs promises, which the test runner tracks).
        if (r % 8 === 0) assert.deepEqual(await listedPages(index.scanPages(lower, upper)), within(stored, lower, upper));
      }
      const whole = await cached(index, MIN_BOUND, INFINITY_BOUND);
      assert.equal(whole.text, summed(stored));
      assert.ok(whole.read < items.length / 100, `whole set from ${whole.read} reads for ${items.length} items`);
    };
    await probe(40); // builds the buckets
    await write(recent); // all land in the last bucket: it splits as it grows
    await write(newer, spread.slice(0, 500)); // replaced versions leave their buckets
    await probe(60);
    // Writes while scans fill the cache: no bucket that a write changed during its read may be cached stale.
    const reads = async () => {
      for (let r = 0; r < 200; r++) {
        const t = 1_000_000 + Math.floor(random() * 6000);
        await cached(index, { t, id: "" }, { t: t + 1 + Math.floor(random() * 800), id: "" });
      }
    };
    await Promise.all([write(during), reads(), reads()]);
    await probe(60);
    // 15,000 items make about 60 buckets (one at each anchor, 1 item in 256): enough to cut the
    // whole range in 16 at bucket bounds; asked for 1,000 pieces, it is cut at every bound.
    const points = await index.splitPoints(MIN_BOUND, INFINITY_BOUND, 16);
    assert.equal(points?.length, 15);
    const all = (await index.splitPoints(MIN_BOUND, INFINITY_BOUND, 1000))!;
    assert.ok(all.length > 15 && all.length < 120, `${all.length} bounds`);
    for (const list of [points!, all]) for (let i = 1; i < list.length; i++) assert.ok(compareBounds(list[i - 1]!, list[i]!) < 0);
    // A range of one whole bucket has no bound inside; it sums without reading.
    assert.equal(await index.splitPoints(all[3]!, all[4]!, 16), undefined, "one bucket has no split points");
    assert.equal((await cached(index, all[3]!, all[4]!)).read, 1);
    await index.close();
    await records.close();
  });

  it("a bucket read that a write overlapped is not cached stale, and a write a read already saw is not applied twice", async () => {
    // A sorted array whose scans read a snapshot taken when they start, as a LevelDB iterator does.
    const stored: Item[] = [];
    // One item a page, so that a scan can be caught in the middle of a bucket.
    const source: ScanSource = {
      async *scanPages(lower, upper) {
        for (const item of [...stored]) if (compareBounds(item, lower) >= 0 && compareBounds(item, upper) < 0) yield [item];
      },
    };
    const sourceItems = async (lower: Bound, upper: Bound) => {
      const out: Item[] = [];
      for await (const page of source.scanPages(lower, upper)) out.push(...page);
      return out;
    };
    const item = (n: number): Item => ({ t: 1000 + n, id: sha256Hex(String(n)) });
    const store = (it: Item) => {
      stored.push(it);
      stored.sort(compareBounds);
    };
    for (let n = 0; n < 2000; n += 2) store(item(n));
    const sums = new RangeSums(source);
    const all = async () => listed(sums.scan(MIN_BOUND, INFINITY_BOUND));
    const whole = async () => {
      const acc = new Accumulator();
      await sums.sum(MIN_BOUND, INFINITY_BOUND, acc);
      return `${acc.count} ${acc.fingerprint()}`;
    };
    await whole(); // builds the buckets; none of their items cached yet
    // A scan reads its (uncached) bucket from a snapshot; a write into that bucket lands before the read ends.
    const scan = sums.scan(item(500), item(600));
    assert.ok(!(await scan.next()).done);
    await sums.write(async () => store(item(551)), item(551));
    for await (const _ of scan);
    // A read that starts after the store holds a write but before the write reached the sums caches it already.
    await sums.write(async () => {
      store(item(1553));
      await listed(sums.scan(item(1500), item(1600)));
    }, item(1553));
    // Neither bucket is cached stale, nor has the second write twice.
    assert.deepEqual(await listed(sums.scan(item(400), item(700))), await sourceItems(item(400), item(700)));
    assert.deepEqual(await listed(sums.scan(item(1400), item(1700))), await sourceItems(item(1400), item(1700)));
    assert.deepEqual(await all(), stored);
    const acc = new Accumulator();
    for (const it of stored) acc.add(it.id);
    assert.equal(await whole(), `${acc.count} ${acc.fingerprint()}`);
  });

  it("a bucket split whose read fails (the store closing under it) is no unhandled rejection; sums stay exact", async () => {
    const stored: Item[] = [];
    let closed = false;
    const source: ScanSource = {
      async *scanPages(lower, upper) {
        if (closed) throw new Error("store closed");
        yield stored.filter((item) => compareBounds(item, lower) >= 0 && compareBounds(item, upper) < 0);
      },
    };
    const sums = new RangeSums(source);
    await sums.sum(MIN_BOUND, INFINITY_BOUND, new Accumulator()); // builds the (one, empty) bucket
    closed = true;
    const acc = new Accumulator();
    // Past MAX_BUCKET items in one bucket, none an anchor: every add tries a cut, each read fails.
    for (let n = 0, added = 0; added <= MAX_BUCKET + 50; n++) {
      const it = { t: 1000 + n, id: sha256Hex(String(n)) };
      if (isAnchor(it)) continue;
      await sums.write(async () => void stored.push(it), it);
      acc.add(it.id);
      added++;
    }
    await sums.cutsDone();
    await new Promise((resolve) => setImmediate(resolve));
    const whole = new Accumulator();
    await sums.sum(MIN_BOUND, INFINITY_BOUND, whole); // one whole bucket: from its sum, no read
    assert.equal(whole.fingerprint(), acc.fingerprint());
    assert.deepEqual(unhandled, []);
  });

  it("cut at the same bounds on two servers holding nearly the same items, whatever order they wrote them in; an aligned range sums without reading", async () => {
    const item = (n: number): Item => ({ t: 1000 + n, id: sha256Hex(`item ${n}`) });
    /** A sorted array as the index store, counting the items its scans read. */
    const arraySource = (stored: Item[]) => {
      const source = {
        read: 0,
        async *scanPages(lower: Bound, upper: Bound) {
          const page = stored.filter((it) => compareBounds(it, lower) >= 0 && compareBounds(it, upper) < 0);
          source.read += page.length;
          yield page;
        },
      };
      return source;
    };
    const bounds = async (sums: RangeSums) => (await sums.splitPoints(MIN_BOUND, INFINITY_BOUND, 1e9)) ?? [];
    // Even numbers 0..29,998: 10,000 at first, 5,000 appended in time order, then 1,000 removed
    // and 1,000 odd ones written at random places (anchors among them cut buckets by a read).
    const random = seededRandom(11);
    const storedX: Item[] = [];
    for (let n = 0; n < 20_000; n += 2) storedX.push(item(n));
    const x = new RangeSums(arraySource(storedX));
    await x.sum(MIN_BOUND, INFINITY_BOUND, new Accumulator());
    const write = async (added?: Item, removed?: Item) => {
      await x.write(
        async () => {
          if (removed) storedX.splice(storedX.findIndex((it) => compareBounds(it, removed) === 0), 1);
          if (added) storedX.splice(storedX.findIndex((it) => compareBounds(it, added) > 0) >>> 0, 0, added);
        },
        added,
        removed,
      );
    };
    for (let n = 20_000; n < 30_000; n += 2) await write(item(n));
    for (let k = 0; k < 1000; k++) {
      const removed = storedX[Math.floor(random() * storedX.length)]!;
      await write(item(2 * Math.floor(random() * 15_000) + 1), removed);
    }
    await x.cutsDone();
    // Y built the same set at once.
    const y = new RangeSums(arraySource([...storedX]));
    await y.sum(MIN_BOUND, INFINITY_BOUND, new Accumulator());
    const [bx, by] = [await bounds(x), await bounds(y)];
    assert.ok(bx.length > 40, `${bx.length} buckets`);
    assert.deepEqual(bx, by);
    // Z lacks 20 of the items: the ranges X cuts at are Z's bucket bounds too, and Z sums them from its buckets.
    const storedZ = storedX.filter((_, i) => i % 700 !== 5);
    const sourceZ = arraySource(storedZ);
    const z = new RangeSums(sourceZ);
    await z.sum(MIN_BOUND, INFINITY_BOUND, new Accumulator());
    sourceZ.read = 0;
    for (let i = 0; i + 5 < bx.length; i += 5) {
      const acc = new Accumulator();
      assert.equal(await z.sum(bx[i]!, bx[i + 5]!, acc), 5);
      const expected = new Accumulator();
      for (const it of storedZ) if (compareBounds(it, bx[i]!) >= 0 && compareBounds(it, bx[i + 5]!) < 0) expected.add(it.id);
      assert.equal(acc.fingerprint(), expected.fingerprint());
    }
    assert.equal(sourceZ.read, 0, "no item read");
  });
});
