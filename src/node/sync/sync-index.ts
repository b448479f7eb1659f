/**
 * The reconciliation index: every record as an item (timestamp, id) in
 * (timestamp, id) order, id = sha256 of key and hash(es): it names the
 * version, not only the key, since fingerprints sum ids and would not see
 * two versions of one key that differ only in timestamp. The index is kept in its own store next to the records
 * and maintained on every merge. It is written only through the storage
 * contract's put/del/range, so any store that implements that contract gets
 * it; nothing here knows which store it runs on.
 *
 * Keyspace of the index store:
 *   t<timestamp: 14 hex digits><id: 64 hex>  → seq  (the sorted items, each with its change-feed number)
 *   k<id>                                    → key  (id back to key)
 *   m                                        → "clean <count> <last seq> v2" after a clean close
 *   e, s…, c…                                → the change feed and peer checkpoints (change-feed.ts)
 *   v…  (after "u": a rebuild keeps them)    → where unfinished store copies stopped (copy-cursors.ts)
 * A store that was not closed cleanly (crash, or an index that never
 * existed) is rebuilt from the records on open, streamed.
 */
import { sha256Hex } from "../../crypto/sha256.js";
import { ErrorCode, ToolDbError, errorText } from "../../base/errors.js";
import type { LogFn } from "../../base/logger.js";
import { isRecordShape } from "../../records/record-verifier.js";
import type { ToolDbRecord } from "../../records/record.js";
import type { StoreHints, ToolDbStorageAdapter, WriteOperation } from "../../stores/storage-adapter.js";
import { type Accumulator, type Bound, type Item, MAX_TIMESTAMP, type StoreReads } from "./negentropy-codec.js";
import { CACHED_ITEMS, RangeSums } from "./range-sums.js";
import type { ItemSource } from "./negentropy-codec.js";
import { ChangeFeed, seqKey, seqValue } from "./change-feed.js";
import { WriteWindow } from "../../stores/write-window.js";
import { CLOSE_ENGINE_MS, settledWithin } from "../../stores/engine-cutoff.js";
import { type Clock, systemClock } from "../../base/clock.js";
import { LruMap } from "../../base/bounded-set.js";

const META = "m";
/** What the index store holds (see the keyspace above): hex hashes and numbers, which compress poorly. */
export const SYNC_INDEX_HINTS: StoreHints = { incompressible: true };
/** Records whose index writes a rebuild issues together. */
const REBUILD_STEP = 1024;
const TS_DIGITS = 14;
/** After every item key ("t…"), before "u": the index key of the infinity bound. */
const END = "u";
/** Keys whose latest index entry is remembered (about 2 × this many held; a few hundred bytes each). */
const RECENT_ENTRIES = 2048;

/** The item timestamp of a record: its `t` as a non-negative integer. */
export function itemTime(t: number): number {
  return Number.isFinite(t) ? Math.min(Math.max(Math.floor(t), 0), MAX_TIMESTAMP) : t > 0 ? MAX_TIMESTAMP : 0;
}

/**
 * The item id of a record version: sha256 of [key, hash, hashes of any
 * further CRDT heads], so that every change of what a key holds is a new item.
 */
export function itemId(record: ToolDbRecord): string {
  const heads = (record as { heads?: unknown }).heads;
  const more = Array.isArray(heads) ? heads.map((head) => (head as { h?: unknown })?.h) : [];
  return sha256Hex(JSON.stringify([record.k, record.h, ...more]));
}

function itemKey(t: number, id: string): string {
  return `t${t.toString(16).padStart(TS_DIGITS, "0")}${id}`;
}

function boundKey(b: Bound): string {
  return b.t === Infinity ? END : itemKey(b.t, b.id);
}

/** Counts the items a reconciliation run itself added (see `track`). */
export class RunTracker {
  private readonly expected = new Set<string>();
  /** Items added whose ids were expected. */
  added = 0;
  /** The record keys of those items, in order (exclusive trackers only: what earns credit, once a key, SyncGate). */
  readonly keys: string[] = [];

  constructor(
    private readonly trackers: Set<RunTracker>,
    /** Counts an item only when no other exclusive tracker did (`SyncIndex.track`). */
    private readonly exclusive = false,
  ) {
    trackers.add(this);
  }

  /** The item `id` is about to be merged by the run. */
  expect(id: string): void {
    this.expected.add(id);
  }

  /** Merges of expected items are done (merged or not); forget them. */
  settled(ids: string[]): void {
    for (const id of ids) this.expected.delete(id);
  }

  /** The item `id` of record key `key` was added; `claimed`: an exclusive tracker already counted it. True when this one counts it exclusively. */
  saw(id: string, key: string, claimed: boolean): boolean {
    if (!this.expected.delete(id) || (this.exclusive && claimed)) return false;
    this.added++;
    if (this.exclusive) this.keys.push(key);
    return this.exclusive;
  }

  stop(): void {
    this.trackers.delete(this);
  }
}

export class SyncIndex implements ItemSource {
  private count = 0;
  private opened: Promise<void> | undefined;
  private waitingForStores = false;
  readonly feed: ChangeFeed;
  private readonly trackers = new Set<RunTracker>();
  private readonly sums = new RangeSums({ scanPages: (lower, upper) => this.scanStorePages(lower, upper) });
  /** Set once `open` finished: the per-merge `update` then skips waiting on it. */
  private isOpen = false;
  /**
   * The entry this index last added for a key (a plain record's): when that
   * version is replaced, its item id and change-feed number are known
   * without hashing it again or reading its item. Updates of one key are
   * serialised by the record store, so an entry is never behind the store.
   */
  private readonly recent = new LruMap<string, RecentEntry>(RECENT_ENTRIES);
  /** Ids hashed ahead of the merge (`idFor`), by record object: hashing each twice cost ~1.6 µs a copied record. */
  private readonly hashedIds = new WeakMap<ToolDbRecord, string>();

  constructor(
    readonly store: ToolDbStorageAdapter,
    private readonly records: ToolDbStorageAdapter,
    private readonly log: LogFn,
    /** What close() bounds its wait for an open under way on. */
    private readonly clock: Clock = systemClock,
  ) {
    this.feed = new ChangeFeed(store);
  }

  /** Items in the index (records in the store). */
  get size(): number {
    return this.count;
  }

  /** Items of recently read parts of the index kept in memory at most: reads within them cost no store read. */
  get cacheCapacity(): number {
    return CACHED_ITEMS;
  }

  /** Opens the index, rebuilding it from the records when it was not closed cleanly. Idempotent. */
  open(): Promise<void> {
    this.opened ??= this.doOpen();
    return this.opened;
  }

  private async doOpen(): Promise<void> {
    this.waitingForStores = true;
    await Promise.all([this.store.ready, this.records.ready]);
    this.waitingForStores = false;
    if (this.store.isClosed) throw new ToolDbError(ErrorCode.CLOSED, "sync index: closed before its stores were ready");
    const meta = await this.store.get(META);
    const clean = meta?.match(/^clean (\d+) (\d+) v2$/);
    if (clean && (await this.feed.resume(Number(clean[2])))) this.count = Number(clean[1]);
    else await this.rebuild();
    // Marked dirty while open: a crash leaves it so and the next open rebuilds.
    await this.store.put(META, "open");
    this.isOpen = true;
  }

  /**
   * The old index goes in one `clear`; then the records are streamed in
   * steps of REBUILD_STEP whose index writes are issued together (a batching
   * store writes each step in a few batches): memory is bounded by two
   * steps whatever the store size.
   */
  private async rebuild(): Promise<void> {
    await this.store.clear({ lt: END });
    this.recent.clear();
    this.count = 0;
    await this.feed.reset();
    const adds = new WriteWindow(REBUILD_STEP);
    for await (const [, raw] of this.records.range()) {
      const record = parse(raw);
      if (record) await adds.add(this.add(record));
    }
    await adds.done();
    this.log("sync index rebuilt: %d records", this.count);
  }

  /** Appends to `ops` the writes that add `record`'s item (callers write them together with the removal's); returns its change number. */
  private addWrites(record: ToolDbRecord, id: string, ops: WriteOperation[]): number {
    const seq = this.feed.reserve();
    let claimed = false;
    for (const tracker of this.trackers) if (tracker.saw(id, record.k, claimed)) claimed = true;
    ops.push(
      { type: "put", key: itemKey(itemTime(record.t), id), value: seqValue(seq) },
      { type: "put", key: `k${id}`, value: record.k },
      { type: "put", key: seqKey(seq), value: id },
    );
    return seq;
  }

  private async add(record: ToolDbRecord, id = itemId(record)): Promise<void> {
    const ops: WriteOperation[] = [];
    const seq = this.addWrites(record, id, ops);
    try {
      await this.store.write(ops);
    } finally {
      this.feed.written(seq);
    }
    this.count++;
  }

  /** Called after `record` replaced `previous` (or was stored fresh) in the record store. */
  update(previous: ToolDbRecord | undefined, record: ToolDbRecord): Promise<void> {
    return this.updateMany([{ previous, record }]);
  }

  /** `update` for many records at once (a fetched frame's): their index writes go in one submission. */
  async updateMany(stored: readonly StoredChange[]): Promise<void> {
    if (!this.opened || this.store.isClosed || stored.length === 0) return;
    if (!this.isOpen) await this.opened;
    const changes = stored.map(({ previous, record }) => ({ record, removed: previous ? this.entryOf(previous) : undefined, added: { t: itemTime(record.t), id: this.hashedIds.get(record) ?? itemId(record) } }));
    const removed: RecentEntry[] = [];
    for (const c of changes) if (c.removed) removed.push(c.removed);
    await this.sums.write(() => this.replace(changes), changes.map((c) => c.added), removed);
  }

  /** The index entry of a stored version: remembered when this index added it, else hashed (and its number read later). */
  private entryOf(record: ToolDbRecord): RecentEntry {
    const known = this.recent.get(record.k);
    const t = itemTime(record.t);
    if (known && known.h === record.h && known.t === t && !hasHeads(record)) return known;
    return { h: record.h, t, id: itemId(record), seq: undefined };
  }

  /** Removes each change's old item and adds its new one, all writes issued together. */
  private async replace(changes: readonly { record: ToolDbRecord; removed: RecentEntry | undefined; added: Item }[]): Promise<void> {
    const ops: WriteOperation[] = [];
    // Change numbers of replaced versions this index does not remember: read together.
    const unknown = changes.filter((c) => c.removed !== undefined && c.removed.seq === undefined).map((c) => c.removed!);
    // One read through `get` (coalesced with other single reads into the store's multi-gets), several at once.
    const keys = unknown.map((r) => itemKey(r.t, r.id));
    const read = keys.length === 0 ? [] : keys.length === 1 ? [await this.store.get(keys[0]!)] : await this.store.getMany(keys);
    const readSeq = new Map(unknown.map((r, i) => [r, read[i] === undefined ? undefined : parseInt(read[i]!, 16)]));
    for (const { record, removed } of changes) {
      if (!removed) continue;
      ops.push({ type: "del", key: itemKey(removed.t, removed.id) }, { type: "del", key: `k${removed.id}` });
      const seq = removed.seq ?? readSeq.get(removed);
      if (seq !== undefined) ops.push({ type: "del", key: seqKey(seq) });
      this.recent.delete(record.k);
    }
    const seqs = changes.map((c) => this.addWrites(c.record, c.added.id, ops));
    try {
      await this.store.write(ops);
    } finally {
      for (const seq of seqs) this.feed.written(seq);
    }
    changes.forEach(({ record, removed, added }, i) => {
      if (removed) this.count--;
      this.count++;
      if (!hasHeads(record)) this.recent.set(record.k, { h: record.h, t: added.t, id: added.id, seq: seqs[i] });
    });
  }

  /** Adds the ids in [lower, upper) to `acc` from cached bucket sums; returns the entries read (`reads`: those read besides). */
  sum(lower: Bound, upper: Bound, acc: Accumulator, reads?: StoreReads): Promise<number> {
    return this.sums.sum(lower, upper, acc, reads);
  }

  /** `sum` without waiting, when what it needs is cached; undefined (acc untouched) otherwise. */
  sumCached(lower: Bound, upper: Bound, acc: Accumulator): number | undefined {
    return this.sums.sumCached(lower, upper, acc);
  }

  /** The items in [lower, upper) in pages, when all are cached; undefined otherwise. */
  scanCached(lower: Bound, upper: Bound): (readonly Item[])[] | undefined {
    return this.sums.cachedPages(lower, upper);
  }

  splitPoints(lower: Bound, upper: Bound, parts: number): Promise<Bound[] | undefined> {
    return this.sums.splitPoints(lower, upper, parts);
  }

  /**
   * Starts counting the items a run adds itself (records it fetched): when
   * every number handed out during the run went to one of them, the peer
   * already holds all of them and its checkpoint of us can move past them.
   * An `exclusive` tracker (what earns a sender NEW_RECORD_CREDIT) counts an
   * item only when no other exclusive one did: the same record pushed or
   * fetched on several links at once was credited on each (review).
   */
  /**
   * `itemId(record)` for a record about to be merged, remembered for the
   * merge's index update (a store copy's trackers expect each page's ids
   * first). Only for record objects nothing changes: freshly parsed ones.
   */
  idFor(record: ToolDbRecord): string {
    const id = itemId(record);
    this.hashedIds.set(record, id);
    return id;
  }

  track(exclusive = false): RunTracker {
    return new RunTracker(this.trackers, exclusive);
  }

  /** The record key behind an item id, if this node holds it. */
  keyOf(id: string): Promise<string | undefined> {
    return this.store.get(`k${id}`);
  }

  /** The items in [lower, upper), in order (through the range-sums cache of recently read buckets). */
  scan(lower: Bound, upper: Bound): AsyncGenerator<Item> {
    return this.sums.scan(lower, upper);
  }

  /** The same, a page of items at a time (what the reconciler reads: one promise a page, not one an item). */
  scanPages(lower: Bound, upper: Bound, reads?: StoreReads): AsyncGenerator<readonly Item[]> {
    return this.sums.scanPages(lower, upper, reads);
  }

  /** The items in [lower, upper) as the index store holds them, read by one iterator (no cache). */
  async *scanStore(lower: Bound, upper: Bound): AsyncGenerator<Item> {
    for await (const page of this.scanStorePages(lower, upper)) yield* page;
  }

  /** The same, a page of the store's iterator at a time. */
  async *scanStorePages(lower: Bound, upper: Bound): AsyncGenerator<Item[]> {
    for await (const keys of this.store.keyPages({ gte: boundKey(lower), lt: boundKey(upper) })) {
      const items = new Array<Item>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        items[i] = { t: parseInt(key.slice(1, 1 + TS_DIGITS), 16), id: key.slice(1 + TS_DIGITS) };
      }
      yield items;
    }
  }

  /** Marks the index clean and closes its store. Idempotent. */
  async close(): Promise<void> {
    if (this.store.isClosed) return;
    const notClean = (err: unknown) => this.log("sync index not marked clean: %s", errorText(err));
    let marked: Promise<void> | undefined;
    try {
      // An open still waiting for its stores (one that never becomes ready) wrote nothing: not waited for.
      if (this.opened && !this.waitingForStores) {
        // An open or rebuild under way is waited for at most CLOSE_ENGINE_MS on the node's clock: one held by a
        // stalled disk does not hold close(). The index is then not marked clean (rebuilt at the next open); the
        // store's close gives up on the call held (CLOSE_ENGINE_MS again) and the open rejects with CLOSED.
        if (!this.isOpen && !(await settledWithin(this.opened, this.clock, CLOSE_ENGINE_MS))) {
          this.log("sync index: its open had not ended after %d ms: closed without it, not marked clean", CLOSE_ENGINE_MS);
        } else {
          await this.opened;
          // Submitted before the store closes, not awaited first: the store's close waits for it, at most
          // CLOSE_ENGINE_MS (a stalled disk does not hold close(); the index is then rebuilt at the next open).
          marked = this.store.put(META, `clean ${this.count} ${this.feed.lastSeq} v2`).catch(notClean);
        }
      }
    } catch (err) {
      notClean(err);
    }
    await Promise.all([marked, this.store.close()]);
  }
}

/** A record stored in place of `previous` (undefined: a new key). */
export interface StoredChange {
  readonly previous: ToolDbRecord | undefined;
  readonly record: ToolDbRecord;
}

/** An item with what identifies its version, and its change-feed number when known. */
interface RecentEntry extends Item {
  readonly h: string;
  readonly seq: number | undefined;
}

/** A CRDT document's item id covers its heads too: such versions are always hashed, never remembered. */
function hasHeads(record: ToolDbRecord): boolean {
  return (record as { heads?: unknown }).heads !== undefined;
}

function parse(raw: string): ToolDbRecord | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    return isRecordShape(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
