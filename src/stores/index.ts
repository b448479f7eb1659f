export { ToolDbStorageAdapter, DEFAULT_QUERY_LIMIT, type StorageAdapterConstructor, type StorageAdapterHost } from "./storage-adapter.js";
export { MemoryStore } from "./memory-store.js";
export { LevelStore } from "./level-store.js";
