/**
 * What range sync sends of its own records (pushes, fetch answers): the
 * stored JSON as it is, never parsed and serialised again, and only when it
 * is a well-formed record within the largest record allowed.
 */
import type { LogFn } from "../../base/logger.js";
import { isRecordShape } from "../../records/record-verifier.js";
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

  /** The stored JSON of the record behind an item id; only a well-formed record is ever put into a frame. */
  private async one(id: string): Promise<string | undefined> {
    const key = await this.index.keyOf(id);
    const raw = key === undefined ? undefined : await this.store.get(key);
    if (raw === undefined) return undefined;
    try {
      return isRecordShape(JSON.parse(raw)) ? raw : undefined;
    } catch {
      return undefined;
    }
  }
}
