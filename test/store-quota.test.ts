/**
 * StoreQuota counts the keys a store holds at start by streaming it (a
 * server restarting on a large store must not hold every key at once), up to
 * one past the cap, on any store.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveLimits } from "../src/limits/limits.js";
import { StoreQuota } from "../src/node/quota.js";
import { RecordStore } from "../src/node/record-store.js";
import { LevelStore, MemoryStore } from "../src/stores/index.js";
import type { ToolDbStorageAdapter } from "../src/stores/storage-adapter.js";

const KEYS = 2_500;

async function counted(store: ToolDbStorageAdapter, maxStoreKeys: number): Promise<number> {
  const quota = new StoreQuota(resolveLimits({ maxStoreKeys, anonymousKeyShare: 0.5, maxKeysPerAuthor: 10 }), new RecordStore(store), true);
  await quota.load();
  return quota.size;
}

describe("store quota at start", () => {
  for (const [name, make] of [
    ["MemoryStore", async () => ({ store: new MemoryStore(undefined, "quota") as ToolDbStorageAdapter, done: async () => undefined })],
    [
      "LevelStore",
      async () => {
        const dir = await mkdtemp(join(tmpdir(), "tooldb-quota-"));
        return { store: new LevelStore(undefined, join(dir, "db")) as ToolDbStorageAdapter, done: () => rm(dir, { recursive: true, force: true }) };
      },
    ],
  ] as const) {
    it(`${name}: counts every key, or one past the cap`, async () => {
      const { store, done } = await make();
      try {
        await store.ready;
        await Promise.all(Array.from({ length: KEYS }, (_, i) => store.put(`k/${String(i).padStart(5, "0")}`, `{"v":${i}}`)));
        assert.equal(await counted(store, Infinity), KEYS);
        assert.equal(await counted(store, 100), 101);
        assert.equal(await counted(store, KEYS), KEYS);
      } finally {
        await store.close();
        await done();
      }
    });
  }
});
