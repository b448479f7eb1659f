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
  /** What the store holds, by URL: when it last linked (undefined: only gossiped). Kept to trim the store. */
  private readonly held = new Map<string, number | undefined>();

  constructor(
    private readonly store: ToolDbStorageAdapter,
    private readonly log: LogFn,
  ) {}

  /** Remembered servers, known-good first (most recent first); a store holding more than its bound is trimmed. */
  async load(): Promise<CachedServer[]> {
    await this.store.ready;
    const entries: CachedServer[] = [];
    for (const key of await this.store.query(PREFIX)) {
      try {
        const entry = JSON.parse((await this.store.get(key)) ?? "null") as CachedServer | null;
        if (entry && typeof entry.url === "string" && PREFIX + entry.url === key) entries.push(entry);
        else await this.forget(key);
      } catch (err) {
        this.log("unreadable cache entry %s: %s", key, errorText(err));
      }
    }
    for (const entry of entries) if (!this.held.has(entry.url)) this.held.set(entry.url, entry.lastGood);
    await this.trim();
    return entries
      .filter((e) => this.held.has(e.url))
      .sort((a, b) => (b.lastGood ?? 0) - (a.lastGood ?? 0))
      .slice(0, MAX_CACHED_SERVER_URLS);
  }

  /**
   * Remembers a server. Past MAX_CACHED_SERVER_URLS the least recently good
   * are deleted (only gossiped ones first): a linked server could otherwise
   * list fresh records on every refresh and grow the store for ever.
   */
  save(entry: CachedServer): Promise<void> {
    this.held.delete(entry.url);
    this.held.set(entry.url, entry.lastGood);
    // Issued in order, without waiting in between: a drop decided now goes after the put of what it drops.
    const put = this.store.put(PREFIX + entry.url, JSON.stringify(entry)).catch((err: unknown) => this.log("cannot cache %s: %s", entry.url, errorText(err)));
    return Promise.all([put, this.trim()]).then(() => undefined);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /** Drops the least recently good past the bound, decided and issued at once (see `save`). */
  private trim(): Promise<unknown> {
    if (this.held.size <= MAX_CACHED_SERVER_URLS) return Promise.resolve();
    // Oldest saved first among equals (the map keeps saving order); never linked counts as 0.
    const worst = [...this.held].sort((a, b) => (a[1] ?? 0) - (b[1] ?? 0)).slice(0, this.held.size - MAX_CACHED_SERVER_URLS);
    for (const [url] of worst) this.held.delete(url);
    return Promise.all(worst.map(([url]) => this.forget(PREFIX + url)));
  }

  private forget(key: string): Promise<void> {
    return this.store.del(key).catch((err: unknown) => this.log("cannot drop cache entry %s: %s", key, errorText(err)));
  }
}
