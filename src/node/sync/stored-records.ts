/**
 * What range sync sends of its own records (pushes, fetch answers): the
 * stored JSON as it is, never parsed and serialised again, and only when it
 * is a well-formed record within the largest record allowed.
 */
import type { LogFn } from "../../base/logger.js";
import { isRecordShape } from "../../records/record-verifier.js";
import { isWellFormedText } from "../../base/text-formats.js";
import { SYNC_ID_BYTES, utf8Length } from "../../limits/frame-fit.js";
import type { ToolDbStorageAdapter } from "../../stores/storage-adapter.js";
import type { SyncIndex } from "./sync-index.js";

/** Records read from the store at once (bounds memory: records can be large). */
const READ_CHUNK = 64;

export class StoredRecords {
  constructor(
    private readonly index: Pick<SyncIndex, "keyOf">,
    private readonly store: ToolDbStorageAdapter,
    private readonly maxRecordBytes: () => number,
    private readonly log: LogFn,
  ) {}

  /** UTF-8 bytes of a stored record, or undefined for one over the largest record allowed (stored before that limit): it is never sent. */
  sendable(raw: string): number | undefined {
    const bytes = utf8Length(raw);
    const max = this.maxRecordBytes();
    if (bytes <= max) return bytes;
    this.log("range sync: a stored record of %d bytes is over the largest record allowed (%d); not sent", bytes, max);
    return undefined;
  }

  /**
   * The stored JSON of each id's record (undefined where missing), READ_CHUNK
   * ids at a time read in parallel: the store turns them into a few multi-gets
   * instead of two reads one after the other per id. `counted.lookedUp`
   * grows by the ids looked up (a chunk is looked up whole).
   */
  async *read(ids: string[], counted?: { lookedUp: number }): AsyncGenerator<string | undefined, void, undefined> {
    for (let i = 0; i < ids.length; i += READ_CHUNK) {
      const chunk = ids.slice(i, i + READ_CHUNK);
      if (counted) counted.lookedUp += chunk.length;
      yield* await Promise.all(chunk.map((id) => this.one(id)));
    }
  }

  /**
   * A fetch answer: the records of `ids` that fit `budget` bytes, at most
   * `serves` of them, looking up at most `lookups` ids; the ids left (not
   * looked up, or not fitting) go under `more`, to be asked again. Room is
   * kept for listing every later id under `more`: with at most idsPerFetch
   * ids asked, a largest record always fits first (limits/frame-fit.ts), so
   * every answer makes progress.
   */
  async answer(ids: string[], serves: number, lookups: number, budget: number): Promise<{ raws: string[]; more: string[]; lookedUp: number }> {
    const raws: string[] = [];
    const more: string[] = [];
    let size = 0;
    let full = false;
    const counted = { lookedUp: 0 };
    const reader = this.read(ids.slice(0, lookups), counted);
    for (let i = 0; i < ids.length; i++) {
      const reserve = SYNC_ID_BYTES * (ids.length - i - 1);
      full ||= raws.length >= serves || i >= lookups || size + SYNC_ID_BYTES + reserve > budget;
      const raw = full ? undefined : (await reader.next()).value;
      const bytes = raw === undefined ? undefined : this.sendable(raw);
      if (bytes !== undefined && size + bytes + 1 + reserve <= budget) {
        raws.push(raw!);
        size += bytes + 1;
      } else if (bytes !== undefined || full) {
        full = true;
        more.push(ids[i]!);
      }
    }
    await reader.return();
    return { raws, more, lookedUp: counted.lookedUp };
  }

  /**
   * The stored JSON of the record behind an item id; only a well-formed
   * record of the key the index names is ever put into a frame. A store
   * written before keys had to be well-formed may hold another key's
   * record in a slot ("note\uD800"'s under "note\uFFFD", record-store.ts
   * `Slot`): its key has a lone surrogate, or is not the key the index gave
   * (which the store read back as UTF-8): peers refuse it, so it is not
   * sent.
   */
  private async one(id: string): Promise<string | undefined> {
    const key = await this.index.keyOf(id);
    const raw = key === undefined ? undefined : await this.store.get(key);
    if (raw === undefined) return undefined;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch {
      return undefined;
    }
    if (!isRecordShape(record)) return undefined;
    if (record.k !== key || !isWellFormedText(record.k)) {
      this.log("range sync: item %s names key %j, whose slot holds the record of key %j; not sent", id.slice(0, 16), key!.slice(0, 128), record.k.slice(0, 128));
      return undefined;
    }
    return raw;
  }
}
