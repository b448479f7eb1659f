import { type Clock, systemClock } from "../base/clock.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import { BatchQueue } from "./batch-queue.js";
import { CLOSE_ENGINE_MS, EngineCutoff, settledWithin } from "./engine-cutoff.js";
import { type ClearOptions, type RangeOptions, type StorageAdapterHost, type StoreEntry, ToolDbStorageAdapter, type WriteOperation } from "./storage-adapter.js";

/** What we use of an abstract-level database (classic-level, browser-level). */
export interface LevelDatabase {
  open(options?: { createIfMissing?: boolean }): Promise<void>;
  getMany(keys: string[]): Promise<(string | undefined)[]>;
  /** abstract-level's chained batch: a put or del is one call each into the engine (no operation objects to read back). */
  batch(): ChainedBatch;
  /** Deletes a range of keys in one call (abstract-level's `clear`). */
  clear(options: ClearOptions): Promise<void>;
  keys(options: { gte: Uint8Array; lt: Uint8Array; limit: number; keyEncoding: "view" }): { all(): Promise<Uint8Array[]> };
  /** A sorted snapshot iterator over string keys alone (abstract-level's `keys`). */
  keys(options: RangeOptions & { limit: number }): { nextv(size: number): Promise<string[]>; close(): Promise<void> };
  /** A sorted snapshot iterator over string keys and values (abstract-level's `iterator`). */
  iterator(options: RangeOptions & { limit: number }): { nextv(size: number): Promise<StoreEntry[]>; close(): Promise<void> };
  close(): Promise<void>;
}

export interface ChainedBatch {
  put(key: string, value: string): unknown;
  del(key: string): unknown;
  write(): Promise<void>;
}

/** A queued write: LevelDB batch operations, or a range clear that keeps its place between them. */
type QueuedWrite = WriteOperation | { type: "clear"; bounds: ClearOptions };

/** Operations counted since the store opened, and the backend calls that carried them. */
export interface BatchingStats {
  writes: number;
  writeBatches: number;
  reads: number;
  readBatches: number;
}

/** How long close() waits for the engine (see engine-cutoff.ts, where the sync index's close takes it from too). */
export { CLOSE_ENGINE_MS };

/** Entries fetched per iterator step (one job on libuv's pool), as abstract-level's own `next()` does after its first. */
const RANGE_PAGE = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A store over any abstract-level database: LevelStore (LevelDB, Node) and
 * IndexedDbStore (IndexedDB, browsers) differ only in the engine they open.
 *
 * Puts and dels are coalesced into batches, gets into multi-gets (see
 * BatchQueue): a LevelDB operation is a job on libuv's small thread pool,
 * which WebCrypto's signature checks share, so thousands of single writes
 * (a catch-up merges a record and two index entries per record) would queue
 * behind and between the verifications. Order of submission is kept.
 */
export abstract class AbstractLevelStore extends ToolDbStorageAdapter {
  /** Made once `prepare` allowed it (abstract-level opens a new database by itself on the next microtask). */
  private db!: LevelDatabase;
  /** The engine's open. */
  private readonly opened: Promise<void>;
  /** The open, unless close() gave up on it first (then CLOSED): what operations and `ready` wait for. */
  private readonly usable: Promise<void>;
  private openEnded = false;
  /** Every engine call goes through it: close() gives up on those in flight past CLOSE_ENGINE_MS. */
  private readonly cutoff = new EngineCutoff();
  private readonly clock: Clock;
  readonly batching: BatchingStats = { writes: 0, writeBatches: 0, reads: 0, readBatches: 0 };
  private readonly writes = new BatchQueue<QueuedWrite, void>(async (queued) => {
    await this.usable;
    this.cutoff.check();
    // A chained batch, not an array of operations: classic-level reads each array element's
    // type, key and value back through N-API property lookups, which cost the main thread
    // about twice the CPU of a direct put call per operation.
    let batch: ChainedBatch | undefined;
    let count = 0;
    const flush = async () => {
      if (!batch) return;
      this.batching.writes += count;
      this.batching.writeBatches++;
      const writing = batch;
      batch = undefined;
      count = 0;
      await this.cutoff.run(() => writing.write()).catch((err: unknown) => this.writeFailed(err));
      this.writeSucceeded();
    };
    for (const op of queued) {
      if (op.type === "clear") {
        await flush();
        await this.cutoff.run(() => this.db.clear(op.bounds)).catch((err: unknown) => this.writeFailed(err));
        continue;
      }
      try {
        batch ??= this.db.batch();
        if (op.type === "put") batch.put(op.key, op.value);
        else batch.del(op.key);
      } catch (err) {
        this.writeFailed(err); // a chained batch refuses synchronously (a closed or failed database)
      }
      count++;
    }
    await flush();
  });
  private readonly reads = new BatchQueue<string, string | undefined>(async (keys) => {
    await this.usable;
    this.batching.reads += keys.length;
    this.batching.readBatches++;
    return this.cutoff.run(() => this.db.getMany(keys)).catch(this.closedRead);
  });

  /**
   * `prepare` runs before the database opens (LevelStore checks the files
   * there): it may refuse by throwing, and says whether a missing database
   * may be created.
   */
  constructor(
    host: StorageAdapterHost | undefined,
    storageName: string | undefined,
    open: (name: string) => LevelDatabase,
    private readonly engine: string,
    prepare?: (name: string) => Promise<{ createIfMissing: boolean }>,
  ) {
    super(host, storageName);
    this.opened = (async () => {
      const options = await prepare?.(this.storageName);
      // Opened explicitly in the same tick it is made, with the options prepare chose.
      this.db = open(this.storageName);
      await this.db.open(options).catch((err: unknown) => {
        throw new ToolDbError(ErrorCode.STORAGE_FAILED, `cannot open ${engine} at ${this.storageName}: ${errorText(err instanceof Error && err.cause !== undefined ? err.cause : err)}`, err);
      });
    })();
    this.usable = Promise.race([this.opened, this.cutoff.severed]);
    void this.opened.finally(() => (this.openEnded = true)).catch(() => undefined);
    // Surface open failures through `ready`/operations, never as an unhandled rejection.
    this.opened.catch(() => undefined);
    this.usable.catch(() => undefined);
    this.clock = host?.options.clock ?? systemClock;
  }

  get ready(): Promise<void> {
    return this.usable;
  }

  /** The engine's database, once `ready` resolved. */
  protected get database(): LevelDatabase {
    return this.db;
  }

  /** An engine call, unless close() gave up on the engine (then CLOSED at once; see CLOSE_ENGINE_MS). */
  protected engineCall<T>(call: () => Promise<T>): Promise<T> {
    return this.cutoff.run(call);
  }

  /**
   * A read under way as close() runs (an iterator's next page, a query or get that reaches the engine once it is
   * closing) gets abstract-level's own not-open error: to its caller that is our CLOSED, as for any call after close().
   */
  private readonly closedRead = (err: unknown): never => {
    const code = (err as { code?: unknown } | null)?.code;
    if (this.isClosed && (code === "LEVEL_DATABASE_NOT_OPEN" || code === "LEVEL_ITERATOR_NOT_OPEN")) {
      throw new ToolDbError(ErrorCode.CLOSED, `store ${this.storageName} closed during a read`, err);
    }
    throw err;
  };

  /** A write the engine refused (disk full, I/O error): the store's fault, never the writer's. A write cut off by close() is neither. */
  protected writeFailed(err: unknown): never {
    if (this.cutoff.isCutError(err)) throw err;
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const failure = new ToolDbError(ErrorCode.STORAGE_FAILED, `${this.engine} write failed at ${this.storageName}: ${errorText(cause)}`, err);
    this.noteWriteFailure(failure);
    throw failure;
  }

  protected _put(key: string, value: string): Promise<void> {
    return this.writes.submit({ type: "put", key, value });
  }

  protected async _get(key: string): Promise<string | undefined> {
    return (await this.reads.submit(key)) ?? undefined;
  }

  /** One multi-get for all of them (not split into the read queue's batches: callers bound their count). */
  protected override async _getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    await this.usable;
    this.batching.reads += keys.length;
    this.batching.readBatches++;
    return (await this.cutoff.run(() => this.db.getMany(keys as string[])).catch(this.closedRead)).map((value) => value ?? undefined);
  }

  protected async _query(prefix: string, limit: number): Promise<string[]> {
    await this.usable;
    // UTF-8 never contains the byte 0xFF, so [prefix, prefix + 0xFF) is exactly the keys that start with prefix.
    const gte = encoder.encode(prefix);
    const lt = new Uint8Array(gte.length + 1);
    lt.set(gte);
    lt[gte.length] = 0xff;
    const keys = await this.cutoff.run(() => this.db.keys({ gte, lt, limit, keyEncoding: "view" }).all()).catch(this.closedRead);
    return keys.map((key) => decoder.decode(key));
  }

  protected _del(key: string): Promise<void> {
    return this.writes.submit({ type: "del", key });
  }

  protected override _write(ops: readonly WriteOperation[]): Promise<void> {
    return this.writes.submitAll(ops);
  }

  /** LevelDB's own range delete (one call, no key crosses into JavaScript), in order with the queued writes. */
  protected override _clear(options: ClearOptions): Promise<void> {
    const bounds = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ClearOptions;
    return this.writes.submit({ type: "clear", bounds });
  }

  protected async *_range(options: RangeOptions): AsyncGenerator<StoreEntry> {
    for await (const page of this._rangePages(options)) yield* page;
  }

  protected override async *_rangePages(options: RangeOptions): AsyncGenerator<StoreEntry[]> {
    await this.usable;
    // Pages by nextv: iterating with next() costs a pool job for the first entry alone, then one
    // per 1000, so each short scan (reconciliation reads thousands) took two.
    this.cutoff.check();
    yield* pages(() => this.db.iterator(engineBounds(options)), this.cutoff, this.closedRead);
  }

  /** A keys-only iterator: no value strings, no [key, value] pair per entry. */
  protected override async *_keyPages(options: RangeOptions): AsyncGenerator<string[]> {
    await this.usable;
    this.cutoff.check();
    yield* pages(() => this.db.keys(engineBounds(options)), this.cutoff, this.closedRead);
  }

  protected async _close(): Promise<void> {
    const closing = this.closeEngine();
    if (await settledWithin(closing, this.clock, CLOSE_ENGINE_MS)) return closing;
    // An open or engine calls that have not ended (a stalled disk, an engine bug): close() does not
    // wait for them. What waits for them rejects with CLOSED (a write cut off may or may not have been
    // applied: it was not confirmed), nothing more reaches the engine, and the database closes once
    // they ended (closeEngine goes on).
    const what = this.openEnded ? `with ${this.engine} calls that had not ended after ${CLOSE_ENGINE_MS} ms` : `before its ${this.engine} database opened`;
    this.cutoff.cut(new ToolDbError(ErrorCode.CLOSED, `store ${this.storageName} closed ${what}`));
    closing.catch(() => undefined);
  }

  /** Operations submitted before close are applied first (a resolved put is never lost), then the database closes. */
  private async closeEngine(): Promise<void> {
    // A store whose check refused it never made its database; one that failed to open has nothing to close.
    const open = await this.opened.then(
      () => true,
      () => false,
    );
    if (!open) return;
    await Promise.all([this.writes.idle(), this.reads.idle()]);
    // abstract-level's close waits for its iterators and chained batches, classic-level's for its native calls.
    await this.db.close();
  }
}

/** Only the bounds that are set, and abstract-level's "no limit". */
function engineBounds(options: RangeOptions): RangeOptions & { limit: number } {
  const bounds = Object.fromEntries(Object.entries(options).filter(([name, v]) => v !== undefined && name !== "limit"));
  return { ...bounds, limit: options.limit ?? -1 };
}

/**
 * An engine iterator's entries, RANGE_PAGE at a time; it is closed however
 * the reader stops (once close() cut the engine off, by the engine's close,
 * after a read it may still be running).
 */
async function* pages<T>(open: () => { nextv(size: number): Promise<T[]>; close(): Promise<void> }, cutoff: EngineCutoff, closedRead: (err: unknown) => never): AsyncGenerator<T[]> {
  let iterator: ReturnType<typeof open>;
  try {
    iterator = open();
  } catch (err) {
    closedRead(err);
  }
  try {
    for (;;) {
      const page = await cutoff.run(() => iterator.nextv(RANGE_PAGE)).catch(closedRead);
      if (page.length === 0) return;
      yield page;
    }
  } finally {
    await cutoff.run(() => iterator.close()).catch((err: unknown) => (cutoff.isCutError(err) ? undefined : Promise.reject(err)));
  }
}
