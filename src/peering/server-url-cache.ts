import { errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";

/** What a client remembers of a server between visits. */
export interface CachedServer {
  url: string;
  /** Node address seen at the last verified handshake. */
  address?: string;
  /** When a verified link to it last opened (ms); absent when only gossiped. */
  lastGood?: number;
}

const PREFIX = "server:";
/** Servers remembered at most; the least recently good are dropped first. */
export const MAX_CACHED_SERVER_URLS = 64;

/**
 * The persistent peer cache of a client with a server selection: servers it
 * linked to or learned of, by the URL it dials (a wss:// name or a path
 * behind a proxy, unlike discovery's host:port PeerCache), kept in a store
 * beside its data (IndexedDB in browsers), so the next visit tries
 * known-good servers first. Entries are only hints: every link is verified
 * at its handshake as usual.
 */
export class ServerUrlCache {
  constructor(
    private readonly store: ToolDbStorageAdapter,
    private readonly log: LogFn,
  ) {}

  /** Remembered servers, known-good first (most recent first). */
  async load(): Promise<CachedServer[]> {
    await this.store.ready;
    const entries: CachedServer[] = [];
    for (const key of await this.store.query(PREFIX)) {
      try {
        const entry = JSON.parse((await this.store.get(key)) ?? "null") as CachedServer | null;
        if (entry && typeof entry.url === "string") entries.push(entry);
      } catch (err) {
        this.log("unreadable cache entry %s: %s", key, errorText(err));
      }
    }
    return entries.sort((a, b) => (b.lastGood ?? 0) - (a.lastGood ?? 0)).slice(0, MAX_CACHED_SERVER_URLS);
  }

  save(entry: CachedServer): Promise<void> {
    return this.store.put(PREFIX + entry.url, JSON.stringify(entry)).catch((err: unknown) => this.log("cannot cache %s: %s", entry.url, errorText(err)));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
