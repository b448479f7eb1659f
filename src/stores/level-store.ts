import { ClassicLevel } from "classic-level";
import { AbstractLevelStore } from "./abstract-level-store.js";
import type { StorageAdapterHost } from "./storage-adapter.js";

/**
 * LevelDB store (classic-level). `storageName` is the database directory; it
 * is used as given (absolute or relative to the working directory).
 */
export class LevelStore extends AbstractLevelStore {
  constructor(host?: StorageAdapterHost, storageName?: string) {
    super(host, storageName, (name) => new ClassicLevel<string, string>(name, { keyEncoding: "utf8", valueEncoding: "utf8" }), "LevelDB");
  }
}
