import { ToolDbStorageAdapter } from "./storage-adapter.js";

/** Volatile store for tests, browsers without IndexedDB, and relays that keep nothing. */
export class MemoryStore extends ToolDbStorageAdapter {
  private readonly data = new Map<string, string>();

  get ready(): Promise<void> {
    return Promise.resolve();
  }

  protected async _put(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }

  protected async _get(key: string): Promise<string | undefined> {
    return this.data.get(key);
  }

  protected async _query(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    for (const key of this.data.keys()) if (key.startsWith(prefix)) keys.push(key);
    keys.sort();
    return keys.slice(0, limit);
  }

  protected async _close(): Promise<void> {
    this.data.clear();
  }
}
