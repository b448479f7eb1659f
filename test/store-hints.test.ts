/**
 * Store hints (StoreHints): LevelStore writes the tables of a store hinted
 * incompressible without Snappy, and a server hints its sync index store so
 * (its hex hashes compress poorly; compressing them cost a catch-up CPU on
 * every compaction). Other stores get no hint and stay compressed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LevelStore, MemoryStore, ToolDb, type StorageAdapterHost, type StoreHints } from "../src/index.js";
import { syncIndexName } from "../src/node/options.js";

/** Bytes of LevelDB's table files in `dir` (the write-ahead log is never compressed: left out). */
async function tableBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir)) if (name.endsWith(".ldb")) bytes += (await stat(join(dir, name))).size;
  return bytes;
}

/** Writes `mib` MiB of very compressible values, closes, and reopens once (the log left is written out as a table). */
async function fill(path: string, hints: StoreHints | undefined, mib: number): Promise<number> {
  const value = "ab".repeat(512);
  let store = new LevelStore(undefined, path, hints);
  await store.ready;
  for (let i = 0; i < mib * 1024; i++) void store.put(`k${String(i).padStart(8, "0")}`, value);
  await store.flush();
  await store.close();
  store = new LevelStore(undefined, path, hints);
  await store.ready;
  assert.equal(await store.get("k00000007"), value, "the values read back as written");
  await store.close();
  return tableBytes(path);
}

describe("store hints", { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tooldb-hints-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("LevelStore writes a store hinted incompressible without compression, and others compressed", async () => {
    const plain = await fill(join(dir, "plain"), { incompressible: true }, 6);
    const compressed = await fill(join(dir, "compressed"), undefined, 6);
    assert.ok(plain > 5 * 1024 * 1024, `incompressible: ${plain} bytes of tables for 6 MiB of values`);
    assert.ok(compressed < plain / 4, `compressed: ${compressed} bytes against ${plain}`);
  });

  it("a server hints its sync index store incompressible, and no other store", async () => {
    const hinted = new Map<string, StoreHints | undefined>();
    class Recording extends MemoryStore {
      constructor(host?: StorageAdapterHost, storageName?: string, hints?: StoreHints) {
        super(host, storageName);
        hinted.set(this.storageName, hints);
      }
    }
    const storageName = join(dir, "server");
    const db = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "hints", storageAdapter: Recording, storageName });
    try {
      await db.ready;
      assert.deepEqual(hinted.get(syncIndexName(storageName)), { incompressible: true });
      assert.equal(hinted.get(storageName), undefined, "the records store is compressed");
      assert.ok(hinted.size >= 3, `stores made: ${[...hinted.keys()].join(", ")}`);
    } finally {
      await db.close();
    }
  });
});
