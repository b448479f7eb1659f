import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import { incomingWins, type ToolDbRecord } from "../records/record.js";
import { isRecordShape } from "../records/record-verifier.js";
import { utf8Length } from "../limits/frame-fit.js";
import { BoundedSet } from "../base/bounded-set.js";

export interface MergeOutcome {
  /** The incoming record is now stored. */
  changed: boolean;
  /** What the store holds for the key after the merge. */
  winner: ToolDbRecord;
  /** Why the record was not merged although it verified (a bound, e.g. a CRDT document's size). */
  refused?: string;
  /** The record it replaced, if any. */
  previous?: ToolDbRecord;
  /** The incoming record's JSON as stored, when it is what the store now holds as it came (frames splice it instead of serialising it again). */
  json?: string;
}

/** A secondary index kept in step with every stored record (see src/node/sync/sync-index.ts). */
export interface RecordIndexer {
  update(previous: ToolDbRecord | undefined, record: ToolDbRecord): Promise<void>;
  /** `update` for many records at once, in one submission. */
  updateMany(stored: readonly { previous: ToolDbRecord | undefined; record: ToolDbRecord }[]): Promise<void>;
}

/** A record to store in place of what its key held (`previous`), in a batch (`writeMany`). */
export interface BatchWrite {
  readonly record: ToolDbRecord;
  readonly previous: ToolDbRecord | undefined;
  /** Another key's record the key's slot held (see `Slot`): what the write replaces in the index. */
  readonly foreign?: ToolDbRecord;
}

/**
 * What a key's slot holds. A UTF-8 store kept every lone surrogate as
 * U+FFFD, so before such keys were refused, the record of "note\uD800" was
 * written in the slot of "note\uFFFD": `record` is the key's own record,
 * `foreign` another key's record found in its slot. A foreign record is
 * neither served nor merged against (the slot's own key takes the slot),
 * but the sync index holds it as the slot's item: a write to the slot must
 * replace it there (`previous` for the indexer), or its item stays for good.
 */
export interface Slot {
  readonly record: ToolDbRecord | undefined;
  readonly foreign?: ToolDbRecord;
}

/** What `readLocked` found: each key's own record, and (rarely) another key's record in its slot, by position. */
export interface LockedReads {
  readonly records: (ToolDbRecord | undefined)[];
  readonly foreign: ReadonlyMap<number, ToolDbRecord> | undefined;
}

/**
 * What a key held when read ahead of its merge (`readAhead`), so the merge
 * need not read it again. `stale` is set when the key was or may have been
 * written since; the merge then reads it again.
 */
export interface ReadAhead {
  readonly key: string;
  readonly record: ToolDbRecord | undefined;
  /** Another key's record in the key's slot (see `Slot`). */
  readonly foreign?: ToolDbRecord;
  release(): void;
}

interface Watch {
  readers: number;
  stale: boolean;
}

/** Stored texts at least this long are remembered once checked (parsing one costs more than comparing it). */
const CHECKED_MEMO_MIN_CHARS = 16 * 1024;
/** Checked texts remembered at most (a few megabytes of strings the store's readers hold anyway). */
const CHECKED_MEMO_ENTRIES = 8;
/** Keys whose slot was reported to hold another key's record, remembered so that each is reported once (not on every read). */
const FOREIGN_REPORTED = 1024;

/**
 * Verified records over a string store. Merges for the same key are
 * serialised so concurrent puts cannot interleave their read-compare-write;
 * the lock map only holds keys with a merge in flight.
 */
export class RecordStore {
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Large stored texts already checked to be records, by key (insertion order = age). */
  private readonly checked = new Map<string, CheckedRecord>();
  /** Keys read ahead of a merge and not yet merged or released: a write marks them stale. */
  private readonly watched = new Map<string, Watch>();
  /**
   * What a key holds after the merges of it that ended, while more are queued
   * behind them: a hot key's next merge (and its duplicate check) takes it
   * from here instead of reading and parsing the store again. Only keys with
   * merges in flight are held.
   */
  private readonly latest = new Map<string, ToolDbRecord>();
  indexer: RecordIndexer | undefined;
  /** Keys reported to hold another key's record (`own`). */
  private readonly reportedForeign = new BoundedSet<string>(FOREIGN_REPORTED);

  constructor(
    readonly backend: ToolDbStorageAdapter,
    /** The largest record (JSON bytes) this store takes: every frame that carries one then fits (limits/frame-fit.ts). */
    readonly maxRecordBytes = Number.POSITIVE_INFINITY,
    /** Told why when a stored record is found under a key that is not its own (see `own`). */
    private readonly foreign?: (reason: string, key: string) => void,
  ) {}

  /** The stored record, or undefined (also for unreadable legacy values, and another key's record). */
  get(key: string): Promise<ToolDbRecord | undefined> {
    // Not `async`: every record's duplicate check reads its key, and the extra promise shows in profiles.
    return this.backend.get(key).then((raw) => this.own(key, parseRead(raw)));
  }

  /** What `key`'s slot holds (see `Slot`): what a merge reads. */
  getSlot(key: string): Promise<Slot> {
    return this.backend.get(key).then((raw) => this.slotOf(key, parseRead(raw)));
  }

  private slotOf(key: string, record: ToolDbRecord | undefined): Slot {
    if (record === undefined || record.k === key) return { record };
    this.reportForeign(key, record);
    return { record: undefined, foreign: record };
  }

  /**
   * `record` when it is `key`'s own (see `Slot`): a record read from a slot
   * must have the key asked, else it is neither served nor merged against.
   */
  private own(key: string, record: ToolDbRecord | undefined): ToolDbRecord | undefined {
    if (record === undefined || record.k === key) return record;
    this.reportForeign(key, record);
    return undefined;
  }

  /** `foreign` is told of a slot holding another key's record once a key (again only once the key is forgotten), not on every read. */
  private reportForeign(key: string, record: ToolDbRecord): void {
    if (!this.foreign || !this.reportedForeign.add(key)) return;
    const shown = (k: string) => JSON.stringify(k.slice(0, 128));
    this.foreign(`the store holds the record of key ${shown(record.k)} under key ${shown(key)} (a lone surrogate, written before such keys were refused): not served`, key);
  }

  /**
   * The stored JSON as it is, once checked to be a record: a reply then
   * carries it without serialising the record again. `wanted` is asked when
   * the read completes: when the asker is gone by then, nothing is parsed.
   */
  async getCheckedJson(key: string, wanted: () => boolean): Promise<string | undefined> {
    return (await this.getChecked(key, wanted))?.json;
  }

  /** `getCheckedJson`, with the record's hash and whether it is a CRDT one (`c` set: sent as a crdtPut); `wanted` is told the text's length. */
  async getChecked(key: string, wanted: (chars: number) => boolean): Promise<CheckedRecord | undefined> {
    const raw = await this.backend.get(key);
    if (raw === undefined || !wanted(raw.length)) return undefined;
    if (raw.length < CHECKED_MEMO_MIN_CHARS) return checkedOf(raw, this.own(key, parseStored(raw)));
    // A large record asked for again and again is parsed once: the same text (compared natively) was checked before.
    const memo = this.checked.get(key);
    if (memo?.json === raw) return memo;
    const checked = checkedOf(raw, this.own(key, parseStored(raw)));
    if (!checked) return undefined;
    this.checked.delete(key);
    this.checked.set(key, checked);
    if (this.checked.size > CHECKED_MEMO_ENTRIES) this.checked.delete(this.checked.keys().next().value!);
    return checked;
  }

  query(prefix: string, limit?: number): Promise<string[]> {
    return this.backend.query(prefix, limit);
  }

  /** Keys starting with `prefix` that sort after `after`, at most `limit` (a page of a paged query; values are read and dropped). */
  async queryAfter(prefix: string, after: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    const start = after < prefix ? { gte: prefix } : { gt: after };
    for await (const [key] of this.backend.range(start)) {
      if (!key.startsWith(prefix) || keys.push(key) >= limit) break;
    }
    return keys;
  }

  /**
   * Reads `key` for a merge to come (the record intake checks for a
   * duplicate with it before verifying): a `merge` given the result uses it
   * instead of reading again, unless the key was written meanwhile. Release
   * it when no merge follows.
   */
  readAhead(key: string): Promise<ReadAhead> {
    let watch = this.watched.get(key);
    if (!watch) this.watched.set(key, (watch = { readers: 0, stale: false }));
    watch.readers++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--watch.readers === 0 && this.watched.get(key) === watch) this.watched.delete(key);
    };
    if (this.inFlight.has(key)) {
      // A merge holding the key may write before or after this read is served.
      watch.stale = true;
      const known = this.latest.get(key);
      if (known) return Promise.resolve({ key, record: known, release });
    }
    return this.backend.get(key).then(
      (raw) => {
        const record = parseRead(raw);
        if (record === undefined || record.k === key) return { key, record, release };
        this.reportForeign(key, record);
        return { key, record: undefined, foreign: record, release };
      },
      (err: unknown) => {
        release();
        throw err;
      },
    );
  }

  /** Stores `record` if it wins against what is stored. Callers verify first. */
  merge(record: ToolDbRecord, read?: ReadAhead): Promise<MergeOutcome> {
    return this.serialise(record.k, async () => {
      const fresh = read !== undefined && read.key === record.k && this.watched.get(record.k)?.stale === false;
      // What `latest` holds is the key's own (read or written under the lock): a foreign record is not there.
      let previous = this.latest.get(record.k);
      let foreign: ToolDbRecord | undefined;
      if (previous === undefined) {
        const slot: Slot = fresh ? read : await this.getSlot(record.k);
        previous = slot.record;
        foreign = slot.foreign;
      }
      read?.release();
      if (previous) this.latest.set(record.k, previous);
      if (previous && !incomingWins(previous, record)) return { changed: false, winner: previous, previous };
      const written = await this.put(record, previous, foreign);
      if (written.refused !== undefined) return { changed: false, winner: previous ?? record, previous, refused: written.refused };
      return { changed: true, winner: record, previous, json: written.json };
    });
  }

  /**
   * Stores `record` in place of `previous` (or of `foreign`, another key's
   * record its slot held: see `Slot`) and keeps the index in step; callers
   * hold the key's lock (`serialise`). Resolves why it was not stored
   * (larger than the largest record allowed), else undefined.
   */
  async write(record: ToolDbRecord, previous: ToolDbRecord | undefined, foreign?: ToolDbRecord): Promise<string | undefined> {
    return (await this.put(record, previous, foreign)).refused;
  }

  /** `write`, resolving the JSON stored as well. */
  private async put(record: ToolDbRecord, previous: ToolDbRecord | undefined, foreign?: ToolDbRecord): Promise<{ refused?: string; json: string }> {
    const json = JSON.stringify(record);
    if (json.length * 3 > this.maxRecordBytes && utf8Length(json) > this.maxRecordBytes) {
      return { refused: `record ${record.k.slice(0, 128)} takes ${utf8Length(json)} bytes, over the largest record allowed (${this.maxRecordBytes})`, json };
    }
    const watch = this.watched.get(record.k);
    if (watch) watch.stale = true;
    this.latest.delete(record.k);
    // Issued together, so a batching store writes both in one batch (the index is rebuilt after a crash anyway).
    await Promise.all([this.backend.put(record.k, json), this.indexer?.update(previous ?? foreign, record)]);
    // Set only once written: after a failed write nothing is assumed and the next merge reads the store.
    if (this.inFlight.has(record.k)) this.latest.set(record.k, record);
    return { json };
  }

  /**
   * What each key holds for a merge under its lock (`lockKeys`): what the
   * merges before it left (`latest`), else one multi-get for all the others.
   * Another key's record in a slot (see `Slot`) comes back under `foreign`:
   * a write there passes it on as the `BatchWrite`'s `foreign`.
   */
  async readLocked(keys: readonly string[]): Promise<LockedReads> {
    const records = keys.map((key) => this.latest.get(key));
    const missing = keys.filter((_, i) => records[i] === undefined);
    const raws = missing.length === 0 ? [] : await this.backend.getMany(missing);
    let next = 0;
    let foreign: Map<number, ToolDbRecord> | undefined;
    for (let i = 0; i < keys.length; i++) {
      if (records[i] !== undefined) continue;
      const record = parseRead(raws[next++]);
      if (record === undefined || record.k === keys[i]) records[i] = record;
      else {
        this.reportForeign(keys[i]!, record);
        (foreign ??= new Map()).set(i, record);
      }
    }
    return { records, foreign };
  }

  /**
   * Stores each record in place of its `previous` (callers verified them,
   * hold their keys' locks and checked that they win), the records in one
   * submission and their index entries in another. Resolves, for each, why
   * it was not stored (over the largest record allowed) or its JSON.
   */
  async writeMany(writes: readonly BatchWrite[]): Promise<{ refused?: string; json: string }[]> {
    const results: { refused?: string; json: string }[] = [];
    const ops: { type: "put"; key: string; value: string }[] = [];
    const stored: BatchWrite[] = [];
    for (const write of writes) {
      const { record } = write;
      const json = JSON.stringify(record);
      if (json.length * 3 > this.maxRecordBytes && utf8Length(json) > this.maxRecordBytes) {
        results.push({ refused: `record ${record.k.slice(0, 128)} takes ${utf8Length(json)} bytes, over the largest record allowed (${this.maxRecordBytes})`, json });
        continue;
      }
      results.push({ json });
      const watch = this.watched.get(record.k);
      if (watch) watch.stale = true;
      this.latest.delete(record.k);
      ops.push({ type: "put", key: record.k, value: json });
      stored.push(write);
    }
    // A slot's foreign record is what the write replaces in the index (rare: mapped only then).
    const changes = stored.some((w) => w.previous === undefined && w.foreign !== undefined) ? stored.map((w) => ({ previous: w.previous ?? w.foreign, record: w.record })) : stored;
    await Promise.all([this.backend.write(ops), this.indexer?.updateMany(changes)]);
    for (const { record } of stored) if (this.inFlight.has(record.k)) this.latest.set(record.k, record);
    return results;
  }

  /**
   * Runs `task` holding the merge locks of all `keys` (distinct) at once:
   * it starts when every merge queued on any of them before it ended, and
   * merges queued on them after it wait for it. Taken all at once, in the
   * order of the calls, so two holders of several keys never wait on each
   * other.
   */
  lockKeys<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    const before: Promise<unknown>[] = [];
    for (const key of keys) {
      const tail = this.inFlight.get(key);
      if (tail) before.push(tail);
    }
    // Tails never reject (see `serialise`).
    const run = before.length === 0 ? task() : Promise.all(before).then(task);
    const tail = run.catch(() => undefined);
    for (const key of keys) this.inFlight.set(key, tail);
    void tail.then(() => {
      for (const key of keys) {
        if (this.inFlight.get(key) !== tail) continue;
        this.inFlight.delete(key);
        this.latest.delete(key);
      }
    });
    return run;
  }

  /** Runs `task` holding the key's merge lock (other merge strategies, e.g. CRDT documents, share it). */
  serialise<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.inFlight.get(key);
    const run = before ? before.then(task, task) : task();
    const tail = run.catch(() => undefined);
    this.inFlight.set(key, tail);
    void tail.then(() => {
      if (this.inFlight.get(key) !== tail) return;
      this.inFlight.delete(key);
      this.latest.delete(key);
    });
    return run;
  }
}

/** A stored text checked to be a record: the text, and whether the record is a CRDT one. */
export interface CheckedRecord {
  readonly json: string;
  readonly crdt: boolean;
  readonly h: string;
}

function checkedOf(json: string, record: ToolDbRecord | undefined): CheckedRecord | undefined {
  return record ? { json, crdt: record.c !== null, h: record.h } : undefined;
}

function parseRead(raw: string | undefined): ToolDbRecord | undefined {
  return raw === undefined ? undefined : parseStored(raw);
}

/** A stored value as a record, or undefined when it is not one (an unreadable legacy value). */
export function parseStored(raw: string): ToolDbRecord | undefined {
  try {
    const parsed: unknown = JSON.parse(raw);
    return isRecordShape(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
