/**
 * A reconciliation index (src/node/sync/sync-index.ts) on real stores, for
 * the tests that open, close and reopen one: sync-index-stores.test.ts and
 * change-feed.test.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/base/logger.js";
import { SyncIndex } from "../../src/node/sync/sync-index.js";
import { LevelStore, MemoryStore, type ToolDbStorageAdapter } from "../../src/stores/index.js";

export type MakeStore = (name: string) => ToolDbStorageAdapter;

export interface IndexedStore {
  records: ToolDbStorageAdapter;
  index: SyncIndex;
}

/** MemoryStores named as asked. */
export const memoryStores: MakeStore = (name) => new MemoryStore(undefined, name);

/** Opens an index over the records store `name`, its own entries in `${name}.sync`, both made by `make`. */
export async function indexOn(make: MakeStore, name: string): Promise<IndexedStore> {
  const records = make(name);
  const index = new SyncIndex(make(`${name}.sync`), records, createLogger("test:sync-index"));
  await index.open();
  return { records, index };
}

/** A clean close: the index first (it marks itself closed), then its records store. */
export async function closeIndexed({ records, index }: IndexedStore): Promise<void> {
  await index.close();
  await records.close();
}

/** Runs `body` with LevelStores in a fresh temporary folder, removed afterwards whatever happens. */
export async function withLevelStores(prefix: string, body: (level: MakeStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    await body((name) => new LevelStore(undefined, join(dir, name)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
