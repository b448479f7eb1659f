/**
 * A client's ServerSelection learns every server URL that gossip brings
 * ("servers" events: server records a linked server listed, verified) and
 * writes each to its persistent URL cache. Keys are free, so one linked
 * server listing fresh signed records on every refresh grew a browser's
 * memory and IndexedDB without bound (MAX_CACHED_SERVER_URLS only limited
 * what `load()` returned). The events are played here as the node emits them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryStore, ToolDb, type PeerRecord } from "../src/index.js";
import { ServerSelection } from "../src/entries/hybrid.js";
import { MAX_CACHED_SERVER_URLS, ServerUrlCache } from "../src/peering/server-url-cache.js";
import { MAX_KNOWN_SERVERS } from "../src/peering/server-selection.js";
import { createLogger } from "../src/base/logger.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { ToolDbStorageAdapter } from "../src/stores/storage-adapter.js";

describe("servers learned by gossip on a client", { timeout: 20_000 }, () => {
  it("are bounded in the selection and in its persistent cache", { timeout: 15_000 }, async () => {
    const db = new ToolDb({ topic: "selection-bounds", storageAdapter: MemoryStore, storageName: "selection-bounds" });
    await db.ready;
    const selection = new ServerSelection(db, { links: 1, refreshInterval: 3_600_000 });
    try {
      await selection.ready;
      const lister = { clientId: "lister" } as unknown as PeerSession;
      // 20 lists of 50 new servers each (a pong carries up to LIMITS.maxServersInPong records).
      for (let round = 0; round < 20; round++) {
        const records: PeerRecord[] = Array.from({ length: 50 }, (_, i) => ({
          topic: "selection-bounds", timestamp: Date.now(), host: `gossiped-${round}-${i}.invalid`, port: 9000, address: `addr-${round}-${i}`, sig: "x",
        }));
        db.emit("servers", records, lister);
      }
      const store = (selection as unknown as { cache: { store: ToolDbStorageAdapter } }).cache.store;
      const cached = await store.query("server:");
      const held = { selection: selection.list().length, cache: cached.length };
      assert.ok(held.selection <= MAX_KNOWN_SERVERS && held.cache <= MAX_CACHED_SERVER_URLS, `holds ${JSON.stringify(held)}; bounds ${MAX_KNOWN_SERVERS} and ${MAX_CACHED_SERVER_URLS}`);
    } finally {
      await selection.close();
      await db.close();
    }
  });

  it("the cache keeps servers that linked and drops gossiped ones first", { timeout: 15_000 }, async () => {
    const store = new MemoryStore(undefined, "url-cache-trim");
    const cache = new ServerUrlCache(store, createLogger("test:url-cache"));
    try {
      await cache.save({ url: "ws://good.invalid:9000", address: "good", lastGood: 1_000 });
      for (let i = 0; i < 3 * MAX_CACHED_SERVER_URLS; i++) await cache.save({ url: `ws://gossiped-${i}.invalid:9000`, address: `g${i}` });
      assert.equal((await store.query("server:")).length, MAX_CACHED_SERVER_URLS);
      const loaded = await new ServerUrlCache(store, createLogger("test:url-cache")).load();
      assert.equal(loaded[0]?.url, "ws://good.invalid:9000");
      assert.ok(loaded.some((e) => e.url === `ws://gossiped-${3 * MAX_CACHED_SERVER_URLS - 1}.invalid:9000`), "the newest gossiped servers are kept");
    } finally {
      await store.close();
    }
  });
});
