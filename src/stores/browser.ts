// The stores a browser can run (the "browser" condition of "tooldb-dht/stores").
export { ToolDbStorageAdapter, DEFAULT_QUERY_LIMIT, type StorageAdapterConstructor, type StorageAdapterHost, type StoreHints, type RangeOptions, type StoreEntry, type WriteOperation } from "./storage-adapter.js";
export { AbstractLevelStore, type LevelDatabase } from "./abstract-level-store.js";
export { MemoryStore } from "./memory-store.js";
export { IndexedDbStore } from "./indexeddb-store.js";
