/**
 * Shared compliance suite for storage adapters (the contract in
 * src/stores/storage-adapter.ts). A store passes if it passes every test here:
 *
 *   import { storageAdapterSuite } from "tooldb-dht/test/compliance/storage-suite";
 *   storageAdapterSuite("MyStore", { create: (name) => new MyStore(undefined, name) });
 *
 * Decisions this suite pins down (the contract header leaves them open):
 * - Keys and values are arbitrary *well-formed* Unicode strings: empty, NUL
 *   ('\u0000'), ':', '.', '==', astral characters, U+FFFF and U+10FFFF included.
 *   ToolDb keys arrive from the network, so a store must neither refuse nor
 *   alias any of them. Lone surrogates are out of scope: they have no UTF-8
 *   form, byte-oriented stores replace them with U+FFFD, so the core should
 *   refuse such keys before they reach a store.
 * - "sorted" means Unicode code point order, which is UTF-8 byte order: what
 *   LevelDB, SQLite (BINARY) and any byte-keyed store give for free. It
 *   differs from JavaScript's default `sort()` (UTF-16 code units) only when
 *   a key mixes characters from U+E000..U+FFFF with astral ones (U+10000+).
 * - `query(prefix, limit)` returns the *first* `limit` keys in that order.
 *
 * The tests are in storage-suite-basics.ts, -order.ts and -concurrency.ts.
 */
import { after, describe } from "node:test";
import type { ToolDbStorageAdapter } from "../../src/stores/index.js";
import { getPutTests, lifecycleTests } from "./storage-suite-basics.js";
import { concurrencyTests } from "./storage-suite-concurrency.js";
import type { StorageAdapterFactory, StorageSuiteContext } from "./storage-suite-context.js";
import { queryTests, rangeTests } from "./storage-suite-order.js";

export { type StorageAdapterFactory, compareCodePoints, toolDbError } from "./storage-suite-context.js";

export function storageAdapterSuite(name: string, factory: StorageAdapterFactory): void {
  describe(`storage adapter compliance: ${name}`, () => {
    const opened: ToolDbStorageAdapter[] = [];
    let counter = 0;
    const ctx: StorageSuiteContext = {
      factory,
      nextName: () => `compliance-${++counter}`,
      track(store) {
        opened.push(store);
        return store;
      },
      async open() {
        const store = ctx.track(await factory.create(ctx.nextName()));
        await store.ready;
        return store;
      },
      async putAll(store, keys, value = "v") {
        for (const key of keys) await store.put(key, value);
      },
    };

    after(async () => {
      await Promise.allSettled(opened.map((s) => s.close()));
      await factory.cleanup?.();
    });

    lifecycleTests(ctx);
    getPutTests(ctx);
    queryTests(ctx);
    rangeTests(ctx);
    concurrencyTests(ctx);
  });
}
