import sortedBtree from "sorted-btree";
import { type RangeOptions, type StoreEntry, ToolDbStorageAdapter } from "./storage-adapter.js";
import { compareCodePoints } from "../base/text-formats.js";

// A CommonJS package: Node hands its module.exports to a default import, bundlers its `default` export.
const BTree = ((sortedBtree as { default?: typeof sortedBtree.default }).default ?? sortedBtree) as typeof sortedBtree.default;

/** Entries read from the tree per step of a range scan (the tree may change between steps). */
const RANGE_PAGE = 256;

/**
 * Volatile store for tests, browsers without IndexedDB, and relays that keep
 * nothing. A B+ tree keeps keys sorted, so queries and range scans cost
 * O(log n + results) and never sort the whole store.
 */
export class MemoryStore extends ToolDbStorageAdapter {
  private readonly data = new BTree<string, string>(undefined, compareCodePoints);

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

  protected _del(key: string): Promise<void> {
    this.data.delete(key);
    return Promise.resolve();
  }

  protected async _query(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    if (limit <= 0) return keys;
    for await (const [key] of this._range({ gte: prefix })) {
      if (!key.startsWith(prefix) || keys.length >= limit) break;
      keys.push(key);
    }
    return keys;
  }

  protected async *_range(options: RangeOptions): AsyncGenerator<StoreEntry> {
    for await (const page of this._rangePages(options)) yield* page;
  }

  /** Pages as they are read from the tree: a reader of pages (the reconciliation index) costs no promise an entry. */
  protected override async *_rangePages(options: RangeOptions): AsyncGenerator<StoreEntry[]> {
    let from: string | undefined = options.gte ?? (options.gt === undefined ? this.data.minKey() : this.data.nextHigherKey(options.gt));
    while (from !== undefined && !this.isClosed) {
      // Pages are copied out synchronously, so writes between pages cannot invalidate an iterator.
      const page: StoreEntry[] = [];
      for (const [key, value] of this.data.entries(from)) {
        if (!inUpperBound(key, options) || page.length >= RANGE_PAGE) break;
        page.push([key, value]);
      }
      if (page.length === 0) return;
      yield page;
      if (page.length < RANGE_PAGE) return;
      from = this.data.nextHigherKey(page[page.length - 1]![0]);
    }
  }

  protected async _close(): Promise<void> {
    this.data.clear();
  }
}

function inUpperBound(key: string, options: RangeOptions): boolean {
  if (options.lt !== undefined) return compareCodePoints(key, options.lt) < 0;
  if (options.lte !== undefined) return compareCodePoints(key, options.lte) <= 0;
  return true;
}

