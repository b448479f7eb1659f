import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { ErrorCode, ToolDbError } from "../src/base/errors.js";
import { LevelStore, MemoryStore } from "../src/stores/index.js";
import { storageAdapterSuite, toolDbError } from "./compliance/storage-suite.js";

storageAdapterSuite("MemoryStore", {
  create: (storageName) => new MemoryStore(undefined, storageName),
});

let suiteDir: string | undefined;
async function levelDir(): Promise<string> {
  suiteDir ??= await mkdtemp(join(tmpdir(), "tooldb-level-suite-"));
  return suiteDir;
}

storageAdapterSuite("LevelStore", {
  create: async (storageName) => new LevelStore(undefined, join(await levelDir(), storageName)),
  reopen: async (storageName) => new LevelStore(undefined, join(await levelDir(), storageName)),
  cleanup: async () => {
    if (suiteDir) await rm(suiteDir, { recursive: true, force: true });
  },
});

// The sync index's store: hinted incompressible (no Snappy), the same contract.
storageAdapterSuite("LevelStore (hinted incompressible)", {
  create: async (storageName) => new LevelStore(undefined, join(await levelDir(), `hinted-${storageName}`), { incompressible: true }),
  reopen: async (storageName) => new LevelStore(undefined, join(await levelDir(), `hinted-${storageName}`), { incompressible: true }),
  cleanup: async () => {
    if (suiteDir) await rm(suiteDir, { recursive: true, force: true });
  },
});

/** Waits until `promise` settles without attaching a handler to it (so unhandled-rejection tracking is unaffected). */
async function settledUnobserved(promise: Promise<unknown>): Promise<void> {
  for (let i = 0; i < 100_000 && inspect(promise).includes("<pending>"); i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.ok(!inspect(promise).includes("<pending>"), "promise never settled");
}

describe("LevelStore", () => {
  let dir: string;
  const stores: LevelStore[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  function levelStore(path: string): LevelStore {
    const store = new LevelStore(undefined, path);
    stores.push(store);
    return store;
  }

  /** A path LevelDB cannot create: its parent is a regular file. */
  async function pathBelowAFile(name: string): Promise<string> {
    const file = join(dir, `${name}.file`);
    await writeFile(file, "not a directory");
    return join(file, "db");
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tooldb-level-"));
    process.on("unhandledRejection", onUnhandled);
  });

  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    await Promise.allSettled(stores.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  describe("persistence", () => {
    it("1000 keys and their query order survive close and reopen", async () => {
      const path = join(dir, "persist-many");
      const first = levelStore(path);
      const keys = Array.from({ length: 1000 }, (_, i) => `:addr.k${String(i).padStart(4, "0")}`);
      await Promise.all(keys.map((k, i) => first.put(k, JSON.stringify({ i, s: "é🎉" }))));
      await first.close();

      const second = levelStore(path);
      await second.ready;
      assert.deepEqual(await second.query(":addr."), keys);
      assert.equal(await second.get(keys[999]!), JSON.stringify({ i: 999, s: "é🎉" }));
    });

    it("an overwrite made before close is what reopen sees", async () => {
      const path = join(dir, "persist-overwrite");
      const first = levelStore(path);
      await first.put("k", "old");
      await first.put("k", "new");
      await first.close();
      const second = levelStore(path);
      assert.equal(await second.get("k"), "new");
    });

    it("uses the host's options.storageName as the directory", async () => {
      const path = join(dir, "from-host-options");
      const store = new LevelStore({ options: { storageName: path } });
      stores.push(store);
      assert.equal(store.storageName, path);
      await store.put("k", "v");
      assert.ok(existsSync(join(path, "CURRENT")), "LevelDB files were not created in storageName");
      await store.close();
      const again = levelStore(path);
      assert.equal(await again.get("k"), "v");
    });
  });

  describe("batching (operations coalesced into LevelDB batches and multi-gets)", () => {
    it("1000 puts and 1000 gets issued in one turn take a few backend calls, not 2000", async () => {
      const store = levelStore(join(dir, "batching"));
      await store.ready;
      const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
      await Promise.all(keys.map((k) => store.put(k, k)));
      assert.equal(store.batching.writes, 1000);
      assert.ok(store.batching.writeBatches <= 2, `${store.batching.writeBatches} write batches`);
      assert.deepEqual(await Promise.all(keys.map((k) => store.get(k))), keys);
      assert.equal(store.batching.reads, 1000);
      assert.ok(store.batching.readBatches <= 2, `${store.batching.readBatches} multi-gets`);
    });

    it("a lone put is applied at once: puts awaited one by one are one batch each", async () => {
      const store = levelStore(join(dir, "batching-lone"));
      for (let i = 0; i < 5; i++) await store.put(`k${i}`, "v");
      assert.equal(store.batching.writeBatches, 5);
    });
  });

  describe("reads under way as close() runs", () => {
    // More than one engine page (1000 entries): the read needs the engine again after close() began.
    const KEYS = 1500;
    const reads = {
      range: (store: LevelStore) => store.range(),
      rangePages: (store: LevelStore) => store.rangePages(),
      keyPages: (store: LevelStore) => store.keyPages(),
    };
    for (const [name, read] of Object.entries(reads)) {
      it(`${name}: the read past what it had before close() rejects with CLOSED, not abstract-level's not-open error`, async () => {
        const store = levelStore(join(dir, `closing-${name}`));
        await store.write(Array.from({ length: KEYS }, (_, i) => ({ type: "put" as const, key: `k${String(i).padStart(5, "0")}`, value: "v" })));
        let closing: Promise<void> | undefined;
        const reading = (async () => {
          for await (const _ of read(store)) closing ??= store.close(); // a normal close, begun once the read is under way
        })();
        await assert.rejects(reading, toolDbError(ErrorCode.CLOSED));
        await closing;
      });
    }
  });

  describe("a directory that cannot be opened", () => {
    it("ready rejects with STORAGE_FAILED when the path is below a regular file", async () => {
      const store = levelStore(await pathBelowAFile("ready"));
      await assert.rejects(store.ready, toolDbError(ErrorCode.STORAGE_FAILED));
    });

    it("ready rejects with STORAGE_FAILED when the path is a regular file", async () => {
      const file = join(dir, "plain.file");
      await writeFile(file, "x");
      const store = levelStore(file);
      await assert.rejects(store.ready, toolDbError(ErrorCode.STORAGE_FAILED));
    });

    it("put, get and query reject with STORAGE_FAILED", async () => {
      const store = levelStore(await pathBelowAFile("ops"));
      await assert.rejects(store.put("k", "v"), toolDbError(ErrorCode.STORAGE_FAILED));
      await assert.rejects(store.get("k"), toolDbError(ErrorCode.STORAGE_FAILED));
      await assert.rejects(store.query(""), toolDbError(ErrorCode.STORAGE_FAILED));
    });

    it("the error names the directory and keeps the underlying error as details", async () => {
      const path = await pathBelowAFile("message");
      const store = levelStore(path);
      const err = await store.ready.then(
        () => assert.fail("ready resolved"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ToolDbError);
      assert.ok(err.message.includes(path), `message does not name the directory: ${err.message}`);
      assert.ok(err.details instanceof Error, "details should carry the LevelDB error");
    });

    it("the error message says why (not a directory)", async () => {
      const store = levelStore(await pathBelowAFile("why"));
      await assert.rejects(store.ready, (err: unknown) => {
        assert.ok(err instanceof ToolDbError);
        assert.match(err.message, /ENOTDIR|not a directory/i);
        return true;
      });
    });

    it("a directory locked by another open store rejects with STORAGE_FAILED; the holder keeps working", async () => {
      const path = join(dir, "held");
      const holder = levelStore(path);
      await holder.ready;
      const second = levelStore(path);
      await assert.rejects(second.ready, toolDbError(ErrorCode.STORAGE_FAILED));
      await assert.rejects(second.put("k", "v"), toolDbError(ErrorCode.STORAGE_FAILED));
      await holder.put("k", "holder");
      assert.equal(await holder.get("k"), "holder");
      await second.close();
      await holder.close();
      const third = levelStore(path);
      assert.equal(await third.get("k"), "holder");
    });

    it("the lock error message says the directory is locked", async () => {
      const path = join(dir, "held-message");
      const holder = levelStore(path);
      await holder.ready;
      const second = levelStore(path);
      await assert.rejects(second.ready, (err: unknown) => {
        assert.ok(err instanceof ToolDbError);
        assert.match(err.message, /lock/i);
        return true;
      });
    });

    it("close resolves after a failed open, then operations reject with CLOSED", async () => {
      const store = levelStore(await pathBelowAFile("close"));
      await assert.rejects(store.ready, toolDbError(ErrorCode.STORAGE_FAILED));
      await assert.doesNotReject(store.close());
      await assert.doesNotReject(store.close());
      await assert.rejects(store.get("k"), toolDbError(ErrorCode.CLOSED));
    });

    it("a failed open that nobody awaits causes no unhandled rejection", async () => {
      const before = unhandled.length;
      const store = new LevelStore(undefined, await pathBelowAFile("unobserved"));
      await settledUnobserved(store.ready);
      // Unhandled rejections are reported once the microtask queue drains; give it one more turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled.slice(before), []);
      stores.push(store);
    });
  });
});
