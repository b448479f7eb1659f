/**
 * Where the unfinished store copies of a new server stopped (store-copy.ts),
 * by the peer's address: its public key, stable across links and restarts
 * (a clientId is too, but the change-feed checkpoints are keyed by the
 * address: the same peer, the same key). Held in memory for the links of this
 * run, and saved in the sync index store so that a server restarted in the
 * middle of a copy (stopped, or crashed) resumes it instead of reconciling
 * ranges over the whole store.
 *
 * Keyspace, inside the index store (after "u": an index rebuild keeps them):
 *   v<peer address>  → "<updated ms> <cursor>": every record of the peer up to the cursor was taken in here
 *
 * Why a rebuild keeps them: a cursor is saved only once the intake of its
 * page and of every page before it settled with the link still up (records
 * stored, or refused by the intake: never let go unstored), so it says what
 * the records store holds, not what the index held; a rebuild after a crash
 * reads the same records. What a cursor may still pass (an OS crash losing
 * writes LevelDB acknowledged, a store that failed) is fetched by the range
 * reconciliation that always follows a resumed copy in the same run; and
 * while the index is empty (records store wiped) no cursor is taken: the copy
 * starts over. The cursor held in memory is the last one saved, not the last
 * page asked for: the pages a dropped link had on their way in are let go
 * unstored, and a copy resumed past them (on a new link while the old one
 * closed) saved cursors past records never stored. One copy of a peer runs at
 * a time (StoreCopy.claim), so no copy's saves overtake another's.
 *
 * Bounded: MAX_COPY_CURSORS in memory and as many saved (the least recently
 * updated goes); a cursor is deleted when its copy ends (the store's end,
 * pages that bring nothing new) or a complete range run follows it. A cursor
 * only says where a copy asks from: the copy's checks (a cursor that must
 * move forward, pages per run, budgets) apply to a resumed copy as to any.
 */
import { errorText } from "../../base/errors.js";
import { LruMap } from "../../base/bounded-set.js";
import type { LogFn } from "../../base/logger.js";
import { isCopyCursor } from "../../records/parse-message.js";
import type { ToolDbStorageAdapter } from "../../stores/storage-adapter.js";

/** Peers whose unfinished copy is remembered, in memory and saved. */
export const MAX_COPY_CURSORS = 64;
const PREFIX = "v";
/** The first key after every saved cursor. */
const PAST = "w";

export class CopyCursors {
  /** The last cursor saved of each peer (held even when the index store failed to save it); gone with its saved one. */
  private readonly live = new LruMap<string, string>(MAX_COPY_CURSORS);
  /** The saved cursors' peers and when each was updated (read from the store once). */
  private table: Promise<Map<string, number>> | undefined;

  constructor(
    private readonly store: ToolDbStorageAdapter,
    private readonly now: () => number,
    private readonly log: LogFn,
  ) {}

  /** Where a copy of `peer` stopped: every record up to it was taken in (the pages after it may be here already). */
  async get(peer: string): Promise<string | undefined> {
    const live = this.live.get(peer);
    if (live !== undefined) return live;
    if (!(await this.saved()).has(peer) || this.store.isClosed) return undefined;
    const raw = await this.store.get(PREFIX + peer);
    const after = raw?.slice(raw.indexOf(" ") + 1);
    return after !== undefined && raw!.includes(" ") && isCopyCursor(after) ? after : undefined;
  }

  /** Every record of `peer` up to `cursor` was taken in here: where its copy resumes, and saved for a restart. Never throws (logged). */
  async save(peer: string, cursor: string): Promise<void> {
    // Held as soon as it is true (the records are stored), even if the index store fails to save it.
    this.live.set(peer, cursor);
    try {
      const table = await this.saved();
      if (this.store.isClosed) return;
      if (!table.has(peer)) {
        while (table.size >= MAX_COPY_CURSORS) {
          const [oldest] = [...table].reduce((a, b) => (b[1] < a[1] ? b : a));
          table.delete(oldest);
          this.live.delete(oldest);
          await this.store.del(PREFIX + oldest);
        }
      }
      const at = this.now();
      table.set(peer, at);
      await this.store.put(PREFIX + peer, `${at} ${cursor}`);
    } catch (err) {
      this.log("store copy cursor not saved: %s", errorText(err));
    }
  }

  /** The copy of `peer` ended (or ranges brought the rest): nothing to resume. Never throws (logged). */
  async forget(peer: string): Promise<void> {
    this.live.delete(peer);
    try {
      const table = await this.saved();
      if (!table.delete(peer) || this.store.isClosed) return;
      await this.store.del(PREFIX + peer);
    } catch (err) {
      this.log("store copy cursor not deleted: %s", errorText(err));
    }
  }

  /** Saved cursors held (tests). */
  async count(): Promise<number> {
    return (await this.saved()).size;
  }

  private saved(): Promise<Map<string, number>> {
    this.table ??= (async () => {
      const table = new Map<string, number>();
      for await (const [key, value] of this.store.range({ gte: PREFIX, lt: PAST })) table.set(key.slice(PREFIX.length), Number(value.slice(0, value.indexOf(" "))) || 0);
      return table;
    })();
    // A failed read is tried again by the next call.
    this.table.catch(() => (this.table = undefined));
    return this.table;
  }
}
