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
import type { PeerSession } from "../../network/peer-session.js";
import { LOOKUP_WORK } from "./sync-budget.js";
import type { SyncGate } from "./sync-gate.js";
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
   * instead of two reads one after the other per id.
   */
  async *read(ids: string[]): AsyncGenerator<string | undefined, void, undefined> {
    for (let i = 0; i < ids.length; i += READ_CHUNK) yield* await this.chunk(ids.slice(i, i + READ_CHUNK));
  }

  private chunk(ids: string[]): Promise<(string | undefined)[]> {
    return Promise.all(ids.map((id) => this.one(id)));
  }

  /**
   * A fetch answer: the records of `ids` that fit `budget` bytes, at most
   * `serves` of them, with at most `misses` ids looked up and not served
   * (never stored, or not fitting: the asker's scan budget pays for those,
   * LOOKUP_WORK each); the ids left (not looked up, or not fitting) go under
   * `more`, to be asked again. Ids are looked up a chunk at a time, a chunk
   * never larger than the misses still allowed, so even a fetch of ids never
   * stored cannot pass them: lookups were bounded by `serves` too, and a fetch
   * of 4,096 unknown ids with a scan budget all but used up overdrew it by
   * ~32,000 (review). Room is kept for listing every later id under `more`:
   * with at most idsPerFetch ids asked, a largest record always fits first
   * (limits/frame-fit.ts), so every answer makes progress.
   */
  async answer(ids: string[], serves: number, misses: number, budget: number): Promise<{ raws: string[]; more: string[]; lookedUp: number }> {
    const raws: string[] = [];
    const more: string[] = [];
    let size = 0;
    let full = false;
    let lookedUp = 0;
    let chunk: (string | undefined)[] = [];
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const reserve = SYNC_ID_BYTES * (ids.length - i - 1);
      full ||= raws.length >= serves || size + SYNC_ID_BYTES + reserve > budget;
      if (!full && at >= chunk.length) {
        // Worst case every id of the next chunk is a miss: it holds no more than the misses left.
        const room = Math.min(READ_CHUNK, misses - (lookedUp - raws.length), ids.length - i);
        if (room < 1) full = true;
        else {
          chunk = await this.chunk(ids.slice(i, i + room));
          at = 0;
          lookedUp += room;
        }
      }
      const raw = full ? undefined : chunk[at++];
      const bytes = raw === undefined ? undefined : this.sendable(raw);
      if (bytes !== undefined && size + bytes + 1 + reserve <= budget) {
        raws.push(raw!);
        size += bytes + 1;
      } else if (bytes !== undefined || full) {
        full = true;
        more.push(ids[i]!);
      }
    }
    return { raws, more, lookedUp };
  }

  /**
   * Answers a fetch with the records that fit in one frame (`answer`). A record served is charged against
   * `serves`, any other id looked up (never stored, or not fitting) LOOKUP_WORK items read; lookups stop at both budgets.
   */
  async serve(id: string, ids: string[], to: PeerSession, gate: Pick<SyncGate, "remaining" | "charge">, recordBudget: number): Promise<void> {
    const serves = Math.floor(gate.remaining(to, "serves"));
    const misses = Math.max(1, Math.floor(gate.remaining(to, "scans") / LOOKUP_WORK));
    const { raws, more, lookedUp } = await this.answer(ids, serves, misses, recordBudget);
    gate.charge(to, "serves", raws.length);
    gate.charge(to, "scans", LOOKUP_WORK * (lookedUp - raws.length));
    if (to.connection.closed) return;
    const tail = more.length > 0 ? `,"more":${JSON.stringify(more)}` : "";
    to.sendFrame(`{"type":"syncRecords","id":${JSON.stringify(id)},"to":[],"records":[${raws.join(",")}]${tail}}`, "syncRecords");
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
    return raw !== undefined && this.isRecordOf(key!, raw) ? raw : undefined;
  }

  /** True when `raw`, stored under `key`, is a well-formed record of that key (see `one`). */
  isRecordOf(key: string, raw: string): boolean {
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch {
      return false;
    }
    if (!isRecordShape(record)) return false;
    if (record.k !== key || !isWellFormedText(record.k)) {
      this.log("range sync: item of key %j holds the record of key %j; not sent", key.slice(0, 128), record.k.slice(0, 128));
      return false;
    }
    return true;
  }
}
