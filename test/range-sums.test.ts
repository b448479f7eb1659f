/**
 * Cached range sums of the reconciliation index (src/sync/range-sums.ts):
 * after inserts, replacements and bucket splits, the fingerprint of any
 * range from the cache equals the one from a full scan, and split points
 * cut a long range without reading it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../src/core/logger.js";
import { seededRandom } from "../src/core/random.js";
import type { ToolDbRecord } from "../src/core/record.js";
import { MemoryStore } from "../src/index.js";
import { Accumulator, type Bound, INFINITY_BOUND, MIN_BOUND, compareBounds } from "../src/sync/negentropy-codec.js";
import { SyncIndex } from "../src/sync/sync-index.js";
import { signedRecords } from "./helpers/signed-records.js";

async function scanned(index: SyncIndex, lower: Bound, upper: Bound): Promise<string> {
  const acc = new Accumulator();
  for await (const item of index.scan(lower, upper)) acc.add(item.id);
  return `${acc.count} ${await acc.fingerprint()}`;
}

async function cached(index: SyncIndex, lower: Bound, upper: Bound): Promise<{ text: string; read: number }> {
  const acc = new Accumulator();
  const read = await index.sum(lower, upper, acc);
  return { text: `${acc.count} ${await acc.fingerprint()}`, read };
}

describe("range sums", () => {
  it("give the same fingerprint as a scan for any range, through inserts, replacements and bucket splits, reading far less", { timeout: 120_000 }, async () => {
    const records = new MemoryStore(undefined, "sums");
    const index = new SyncIndex(new MemoryStore(undefined, "sums.sync"), records, createLogger("test:range-sums"));
    await index.open();
    const random = seededRandom(7);
    // Spread over time, then many at one end (the newest bucket must split), then newer versions of some keys.
    const [spread, recent, newer] = await Promise.all([
      signedRecords(6000, "s/", 1_000_000),
      signedRecords(9000, "r/", 9_000_000),
      signedRecords(500, "s/", 5_000_000, "v2"),
    ]);
    const write = async (list: ToolDbRecord[], previous?: ToolDbRecord[]) => {
      for (let i = 0; i < list.length; i += 256) await Promise.all(list.slice(i, i + 256).map((r, j) => index.update(previous?.[i + j], r)));
    };
    await write(spread);
    const probe = async (rounds: number) => {
      const items: Bound[] = [];
      for await (const item of index.scan(MIN_BOUND, INFINITY_BOUND)) items.push(item);
      const pick = () => items[Math.floor(random() * items.length)]!;
      for (let r = 0; r < rounds; r++) {
        const [x, y] = [pick(), random() < 0.2 ? INFINITY_BOUND : pick()];
        const [lower, upper] = compareBounds(x, y) <= 0 ? [x, y] : [y, x];
        const c = await cached(index, lower, upper);
        assert.equal(c.text, await scanned(index, lower, upper), `range ${JSON.stringify([lower, upper])}`);
      }
      const whole = await cached(index, MIN_BOUND, INFINITY_BOUND);
      assert.equal(whole.text, await scanned(index, MIN_BOUND, INFINITY_BOUND));
      assert.ok(whole.read < items.length / 100, `whole set from ${whole.read} reads for ${items.length} items`);
    };
    await probe(40); // builds the buckets
    await write(recent); // all land in the last bucket: it splits as it grows
    await write(newer, spread.slice(0, 500)); // replaced versions leave their buckets
    await probe(60);
    // 15,000 items make about 60 buckets: enough to cut the whole range in 16 at bucket bounds, not in 100.
    const points = await index.splitPoints(MIN_BOUND, INFINITY_BOUND, 16);
    assert.equal(points?.length, 15);
    assert.equal(await index.splitPoints(MIN_BOUND, INFINITY_BOUND, 100), undefined);
    for (let i = 1; i < points!.length; i++) assert.ok(compareBounds(points![i - 1]!, points![i]!) < 0);
    assert.equal(await index.splitPoints(MIN_BOUND, { t: 1_000_100, id: "" }, 16), undefined, "a short range has no split points");
    await index.close();
    await records.close();
  });
});
