import { BrowserLevel } from "browser-level";
import { AbstractLevelStore } from "./abstract-level-store.js";
import type { StorageAdapterHost } from "./storage-adapter.js";

/**
 * IndexedDB store for browsers (browser-level, the IndexedDB twin of
 * classic-level). `storageName` names the IndexedDB database, so data and
 * node keys (`<storageName>.keys`) survive page reloads.
 */
export class IndexedDbStore extends AbstractLevelStore {
  constructor(host?: StorageAdapterHost, storageName?: string) {
    super(host, storageName, (name) => new BrowserLevel<string, string>(name, { keyEncoding: "utf8", valueEncoding: "utf8" }), "IndexedDB");
  }
}
