/**
 * A client's ServerSelection learns every server URL that gossip brings
 * ("servers" events: server records a linked server listed, verified) and
 * writes each to its persistent URL cache. Neither the selection's map nor
 * the cache store is ever trimmed: MAX_CACHED_SERVER_URLS only limits what
 * `load()` returns. Keys are free, so one linked server that lists fresh
 * signed records on every refresh grows a browser's memory and IndexedDB
 * without bound. The events are played here as the node emits them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryStore, ToolDb, type PeerRecord } from "../src/index.js";
import { ServerSelection } from "../src/entries/hybrid.js";
import { MAX_CACHED_SERVER_URLS } from "../src/peering/server-url-cache.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { ToolDbStorageAdapter } from "../src/stores/storage-adapter.js";

/** The directory's own bound on servers learned by gossip (src/node/server-directory.ts). */
const MAX_KNOWN_SERVERS = 256;

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
});
