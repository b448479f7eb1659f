import { ToolDbStorageAdapter } from "./storage-adapter.js";

/** Volatile store for tests, browsers without IndexedDB, and relays that keep nothing. */
export class MemoryStore extends ToolDbStorageAdapter {
  private readonly data = new Map<string, string>();

  get ready(): Promise<void> {
    return Promise.resolve();
  }

  protected _put(key: string, value: string): Promise<void> {
    this.data.set(key, value);
    return Promise.resolve();
  }

  protected _get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.data.get(key));
  }

  protected async _query(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    for (const key of this.data.keys()) if (key.startsWith(prefix)) keys.push(key);
    keys.sort(compareCodePoints);
    return keys.slice(0, limit);
  }

  protected async _close(): Promise<void> {
    this.data.clear();
  }
}

/**
 * Unicode code point order (= UTF-8 byte order, LevelDB's order). JavaScript's
 * default sort compares UTF-16 code units, which puts astral characters
 * (surrogates 0xD800-0xDFFF) before U+E000..U+FFFF; move surrogates above them.
 */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
