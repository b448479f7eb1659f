/**
 * Keys written again and again keep the reconciliation index exact: one
 * item per key, one change-feed entry per item, the id → key map pruned.
 * The index remembers the entry it added last for a key, so most
 * replacements neither hash the old version nor read its item; these cases
 * mix remembered versions with ones it must hash (CRDT heads).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../src/base/logger.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { MemoryStore } from "../src/index.js";
import { INFINITY_BOUND, MIN_BOUND } from "../src/node/sync/negentropy-codec.js";
import { SyncIndex, itemId } from "../src/node/sync/sync-index.js";
import { signedRecords } from "./helpers/signed-records.js";

async function openIndex(): Promise<SyncIndex> {
  const index = new SyncIndex(new MemoryStore(), new MemoryStore(), createLogger("test:sync-overwrite"));
  await index.open();
  return index;
}

/** Asserts that the index holds exactly `latest` (one version per key) in its items, feed and key map. */
async function assertHolds(index: SyncIndex, latest: ToolDbRecord[], replaced: ToolDbRecord[]): Promise<void> {
  const ids = latest.map(itemId).sort();
  const items: string[] = [];
  for await (const item of index.scan(MIN_BOUND, INFINITY_BOUND)) items.push(item.id);
  assert.equal(index.size, latest.length);
  assert.deepEqual(items.sort(), ids);
  const page = await index.feed.page(0, 1_000_000);
  assert.deepEqual([...page.ids].sort(), ids, "one feed entry per live item, none for replaced ones");
  for (const record of latest) assert.equal(await index.keyOf(itemId(record)), record.k);
  for (const record of replaced) assert.equal(await index.keyOf(itemId(record)), undefined, `${record.k}@${record.t} is gone`);
}

describe("sync index: keys written again and again", () => {
  it("three rounds of overwrites of 200 keys, in turn, leave one item and one feed entry per key", { timeout: 60_000 }, async () => {
    const rounds = await Promise.all([1, 2, 3].map((n) => signedRecords(200, "hot/", n * 1_000_000, `v${n}`)));
    const index = await openIndex();
    for (const [n, round] of rounds.entries()) {
      // Interleaved, as a busy server sees them: every key in turn, several updates in flight.
      await Promise.all(round.map((record, i) => index.update(n === 0 ? undefined : rounds[n - 1]![i], record)));
    }
    await assertHolds(index, rounds[2]!, [...rounds[0]!, ...rounds[1]!]);
    await index.close();
  });

  it("versions it must hash (CRDT heads, a copy of the remembered version) are removed as exactly", { timeout: 60_000 }, async () => {
    const [plain, heads, newer] = await Promise.all([signedRecords(3, "mix/", 1_000_000), signedRecords(4, "head/", 2_000_000), signedRecords(3, "mix/", 3_000_000, "v2")]);
    const withHeads = { ...plain[0]!, heads: heads.slice(0, 2) } as ToolDbRecord;
    const index = await openIndex();
    await index.update(undefined, withHeads); // a CRDT document: its id covers its heads, never remembered
    await index.update(undefined, plain[1]!);
    await index.update(undefined, plain[2]!);
    // The previous version comes as a fresh copy (as parsed from the store): it is recognised by key, hash and time.
    await index.update(JSON.parse(JSON.stringify(plain[1])) as ToolDbRecord, newer[1]!);
    await index.update(withHeads, newer[0]!);
    await index.update(plain[2]!, newer[2]!);
    await assertHolds(index, newer, [withHeads, ...plain]);
    // And back to a document with heads on top of a remembered plain version.
    const doc = { ...newer[0]!, t: newer[0]!.t + 1, heads: heads.slice(2) } as ToolDbRecord;
    await index.update(newer[0]!, doc);
    await assertHolds(index, [doc, newer[1]!, newer[2]!], [newer[0]!]);
    await index.close();
  });
});
