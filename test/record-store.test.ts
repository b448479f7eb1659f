/**
 * RecordStore merges of one key follow one another; while more are queued
 * behind a merge, the next takes what the key holds from the merge before
 * it instead of reading and parsing the store again (a hot key written by
 * many puts at once). A write that failed must not be taken as stored.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RecordStore } from "../src/node/record-store.js";
import { signRecord } from "../src/node/record-signer.js";
import { MemoryStore } from "../src/stores/index.js";
import type { ToolDbRecord } from "../src/index.js";
import { testAuthor } from "./helpers/signed-records.js";

const T = 30_000;

/** A memory store that counts reads and can be told to fail its next write, or to hold it. */
class ProbedStore extends MemoryStore {
  reads = 0;
  failNextPut = false;
  /** The next write waits for this. */
  holdNextPut: Promise<void> | undefined;

  override get(key: string): Promise<string | undefined> {
    this.reads++;
    return super.get(key);
  }

  override put(key: string, value: string): Promise<void> {
    if (this.failNextPut) {
      this.failNextPut = false;
      return Promise.reject(new Error("disk full"));
    }
    const hold = this.holdNextPut;
    this.holdNextPut = undefined;
    return hold ? hold.then(() => super.put(key, value)) : super.put(key, value);
  }
}

async function probedStore(name: string): Promise<{ backend: ProbedStore; store: RecordStore }> {
  const backend = new ProbedStore(undefined, name);
  await backend.ready;
  return { backend, store: new RecordStore(backend) };
}

async function versions(key: string, count: number): Promise<ToolDbRecord[]> {
  const author = await testAuthor();
  const t0 = Date.now() - 60_000;
  return Promise.all(Array.from({ length: count }, (_, n) => signRecord(author, key, { n }, t0 + n, 0, false)));
}

describe("RecordStore: merges of a hot key", () => {
  it("queued merges of one key read the store once and keep last-writer-wins", { timeout: T }, async () => {
    const { backend, store } = await probedStore("hot");
    const records = await versions("hot", 200);
    // Newest first for half of them, so that many merges lose against the one before.
    const order = [...records.slice(100).reverse(), ...records.slice(0, 100)];
    const outcomes = await Promise.all(order.map((r) => store.merge(r)));
    const newest = records[199]!;
    assert.equal((await store.get("hot"))?.h, newest.h, "the newest version is stored");
    outcomes.forEach((o, i) => {
      const r = order[i]!;
      assert.equal(o.changed, i === 0, `merge ${i}: only the first (the newest) changed the store`);
      assert.equal(o.winner.h, newest.h, `merge ${i}: the winner is what the store holds`);
      if (i > 0) assert.ok(r.t < newest.t);
    });
    assert.equal(backend.reads, 2, "one read by the first merge, one by the check above");
    await store.merge(records[0]!);
    assert.equal(backend.reads, 3, "a merge after the queue drained reads the store again");
    await backend.close();
  });

  it("a merge queued behind a failed write reads the store instead of assuming the write", { timeout: T }, async () => {
    const { backend, store } = await probedStore("failing");
    const [older, newer] = await versions("k", 2);
    backend.failNextPut = true;
    const first = store.merge(newer!);
    const second = store.merge(older!);
    await assert.rejects(first, /disk full/);
    const outcome = await second;
    assert.equal(outcome.changed, true, "the older version wins against an empty store");
    assert.equal((await store.get("k"))?.h, older!.h);
    await backend.close();
  });

  it("a duplicate check on a key being merged sees what the store holds, not a write still under way", { timeout: T }, async () => {
    const { backend, store } = await probedStore("ahead");
    const [a, b] = await versions("k", 2);
    await store.merge(a!);
    let release!: () => void;
    // The next write (the second merge's: the first finds `a` stored) waits until released.
    backend.holdNextPut = new Promise((resolve) => (release = resolve));
    const first = store.merge(a!);
    const second = store.merge(b!);
    assert.equal((await first).changed, false);
    const read = await store.readAhead("k");
    assert.equal(read.record?.h, a!.h, "the held write is not taken as stored");
    read.release();
    release();
    assert.equal((await second).changed, true);
    const after = await store.readAhead("k");
    assert.equal(after.record?.h, b!.h);
    after.release();
    await backend.close();
  });
});
