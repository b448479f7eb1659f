/**
 * The storage contract. A store maps string keys to string values (ToolDb
 * stores each record as its JSON text). Third-party stores extend this class
 * and run test/compliance/storage-suite against themselves.
 *
 * Contract:
 * - `get` resolves `undefined` for a missing key and rejects only on failure.
 * - `query(prefix)` resolves the keys that start with `prefix`, sorted, at most `limit`.
 * - `put` has reached the backend once it resolves (it survives the process
 *   being killed); `flush()` makes every put that resolved before it survive
 *   a machine crash too (fsync). Stores without that distinction resolve
 *   `flush()` at once (the default).
 * - `del` removes a key (a missing key is not an error).
 * - `range({gte|gt, lt|lte, limit})` streams [key, value] pairs in the same
 *   order as `query`, lazily: a store never loads the whole range
 *   (`rangePages`: the same, an array of pairs at a time; `keyPages`: only
 *   their keys, an array at a time). Writes
 *   made while a range is being read may or may not show in it, but a range
 *   never fails or repeats a key because of them. Secondary indexes (see
 *   src/node/sync/sync-index.ts) are built on `put`/`del`/`range` alone, so a new
 *   store gets them by implementing `_del` and `_range`.
 * - `clear(bounds)` deletes every key in the bounds (as `range`, without
 *   `limit`) after the writes issued before it, before those issued after
 *   it. The default deletes the range's keys through `del`; a store with a
 *   bulk delete (LevelDB's) overrides `_clear`, and a store that batches
 *   writes must keep the order (AbstractLevelStore queues it with them).
 * - Writes (`put`, `del`, `clear`) issued without awaiting apply in the order issued
 *   (the last write of a key wins). A store may coalesce them into batches
 *   (AbstractLevelStore does: one LevelDB write for many), as long as each
 *   resolves only once it reached the backend.
 * - A write that fails because of the store itself (disk full, I/O error)
 *   rejects with code STORAGE_FAILED and shows in `writeFailure` until a
 *   write succeeds: the node refuses puts without blaming their writer and
 *   its health turns unhealthy, while reads go on.
 * - `close` is idempotent; after it every operation rejects with code CLOSED.
 *   Operations issued before it settle; a put that resolved is never lost.
 *   A store whose engine calls may never end (a stalled disk) bounds that
 *   wait (AbstractLevelStore: CLOSE_ENGINE_MS): past it, those still in
 *   flight reject with CLOSED, meaning not confirmed (a batch the engine
 *   already had may still be applied once its call ends), and no write
 *   failure is reported for them.
 */
import type { Clock } from "../base/clock.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { WriteWindow } from "./write-window.js";

export interface StorageAdapterHost {
  /** `clock`: the node's, for a store's bounded waits (close() waiting for its engine). */
  readonly options: { readonly storageName: string; readonly clock?: Clock };
}

/**
 * What a store will hold, so that its engine can tune itself. Hints only: a
 * store may ignore them, and nothing it holds depends on them.
 */
export interface StoreHints {
  /**
   * Keys and values are mostly hashes and numbers in hex (the sync index):
   * compressing them saves little space and costs CPU on every compaction
   * (LevelDB's Snappy: about 4 µs a record of a 1,000,000-record catch-up).
   */
  readonly incompressible?: boolean;
}

export interface StorageAdapterConstructor {
  new (db?: StorageAdapterHost, storageName?: string, hints?: StoreHints): ToolDbStorageAdapter;
}

export const DEFAULT_QUERY_LIMIT = 10_000;

/** Bounds of a sorted range scan; lower bounds inclusive (gte) or exclusive (gt), upper likewise. */
export interface RangeOptions {
  gte?: string;
  gt?: string;
  lt?: string;
  lte?: string;
  /** At most this many entries (default: no limit). */
  limit?: number;
}

/** Bounds of `clear`: those of a range scan, without a limit. */
/** Entries in one page of `rangePages` from a store that streams entries one by one. */
const RANGE_PAGE_ENTRIES = 256;

export type ClearOptions = Omit<RangeOptions, "limit">;

export type StoreEntry = [key: string, value: string];

/** One operation of `write`. */
export type WriteOperation = { type: "put"; key: string; value: string } | { type: "del"; key: string };

export abstract class ToolDbStorageAdapter {
  readonly storageName: string;
  private closed = false;
  private failure: ToolDbError | undefined;

  constructor(db?: StorageAdapterHost, storageName?: string) {
    this.storageName = storageName ?? db?.options.storageName ?? "tooldb";
  }

  /** Resolves when the store can serve requests (opened, migrated). */
  abstract get ready(): Promise<void>;

  get isClosed(): boolean {
    return this.closed;
  }

  /** The last write the backend refused (disk full, I/O error), until a later write succeeds. */
  get writeFailure(): ToolDbError | undefined {
    return this.failure;
  }

  /** Stores call this when their backend refuses a write (code STORAGE_FAILED)... */
  protected noteWriteFailure(err: ToolDbError): void {
    this.failure = err;
  }

  /** ...and this when one goes through again. */
  protected writeSucceeded(): void {
    this.failure = undefined;
  }

  // Not `async`: these sit on every put's path, and the extra promise shows in profiles.
  put(key: string, value: string): Promise<void> {
    return this.closed ? this.closedError() : this._put(key, value);
  }

  get(key: string): Promise<string | undefined> {
    return this.closed ? this.closedError() : this._get(key);
  }

  /** The values of `keys`, in order (undefined where missing): one call for many reads, e.g. a fetched frame's keys. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    return this.closed ? this.closedError() : this._getMany(keys);
  }

  /** Each key on its own, awaited together; stores that can read many at once override it. */
  protected _getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    return Promise.all(keys.map((key) => this._get(key)));
  }

  query(prefix: string, limit = DEFAULT_QUERY_LIMIT): Promise<string[]> {
    return this.closed ? this.closedError() : this._query(prefix, limit);
  }

  /** Makes the puts that resolved before this call durable (see the contract above). */
  flush(): Promise<void> {
    return this.closed ? this.closedError() : this._flush();
  }

  protected _flush(): Promise<void> {
    return Promise.resolve();
  }

  del(key: string): Promise<void> {
    return this.closed ? this.closedError() : this._del(key);
  }

  /**
   * Puts and dels applied in order, with one promise for all of them: a
   * record's index entries are several writes, and a store that batches
   * (LevelDB) takes them as one submission instead of a promise each.
   */
  write(ops: readonly WriteOperation[]): Promise<void> {
    return this.closed ? this.closedError() : this._write(ops);
  }

  /** Each operation on its own, issued in order and awaited together. */
  protected async _write(ops: readonly WriteOperation[]): Promise<void> {
    await Promise.all(ops.map((op) => (op.type === "put" ? this._put(op.key, op.value) : this._del(op.key))));
  }

  /** Deletes every key in the bounds (see the contract above): how a secondary index is dropped before a rebuild. */
  clear(options: ClearOptions = {}): Promise<void> {
    return this.closed ? this.closedError() : this._clear(options);
  }

  /** The keys of the range deleted by `_del`, issued a step at a time without awaiting each. */
  protected async _clear(options: ClearOptions): Promise<void> {
    const window = new WriteWindow();
    for await (const [key] of this._range(options)) await window.add(this._del(key));
    await window.done();
  }

  /** Sorted [key, value] pairs in the bounds, streamed (see the contract above). */
  async *range(options: RangeOptions = {}): AsyncGenerator<StoreEntry> {
    this.assertOpen();
    const limit = options.limit ?? Infinity;
    if (limit <= 0) return;
    let n = 0;
    for await (const entry of this._range(options)) {
      yield entry;
      if (++n >= limit) return;
    }
  }

  /**
   * The same pairs as `range`, a page (array) at a time: a reader that scans
   * many short ranges pays one promise per page instead of one per pair.
   */
  async *rangePages(options: RangeOptions = {}): AsyncGenerator<readonly StoreEntry[]> {
    this.assertOpen();
    yield* nonEmptyUpTo(this._rangePages(options), options.limit);
  }

  /**
   * The keys of `rangePages`, a page at a time: a reader that needs no values
   * (the reconciliation index reads millions of keys) does not make them.
   */
  async *keyPages(options: RangeOptions = {}): AsyncGenerator<readonly string[]> {
    this.assertOpen();
    yield* nonEmptyUpTo(this._keyPages(options), options.limit);
  }

  /** Keys of `_rangePages`; a store that can read keys alone overrides it. */
  protected async *_keyPages(options: RangeOptions): AsyncIterable<readonly string[]> {
    for await (const page of this._rangePages(options)) yield page.map(([key]) => key);
  }

  /** Pages of `_range`; a store that reads in pages anyway (LevelDB's nextv) hands them over as they are. */
  protected async *_rangePages(options: RangeOptions): AsyncIterable<readonly StoreEntry[]> {
    let page: StoreEntry[] = [];
    for await (const entry of this._range(options)) {
      if (page.push(entry) >= RANGE_PAGE_ENTRIES) {
        yield page;
        page = [];
      }
    }
    if (page.length > 0) yield page;
  }

  private closedError(): Promise<never> {
    return Promise.reject(new ToolDbError(ErrorCode.CLOSED, `store ${this.storageName} is closed`));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this._close();
  }

  protected assertOpen(): void {
    if (this.closed) throw new ToolDbError(ErrorCode.CLOSED, `store ${this.storageName} is closed`);
  }

  protected abstract _put(key: string, value: string): Promise<void>;
  protected abstract _get(key: string): Promise<string | undefined>;
  protected abstract _query(prefix: string, limit: number): Promise<string[]>;
  protected abstract _del(key: string): Promise<void>;
  /** Need not honour `limit` (the base class stops early); must honour the bounds. */
  protected abstract _range(options: RangeOptions): AsyncIterable<StoreEntry>;
  protected abstract _close(): Promise<void>;
}

/** The non-empty pages of `pages`, cut after `limit` elements in all. */
async function* nonEmptyUpTo<T>(pages: AsyncIterable<readonly T[]>, limit = Infinity): AsyncGenerator<readonly T[]> {
  let left = limit;
  if (left <= 0) return;
  for await (const page of pages) {
    if (page.length === 0) continue;
    yield page.length > left ? page.slice(0, left) : page;
    if ((left -= page.length) <= 0) return;
  }
}
