/**
 * The change feed of the reconciliation index, and per-peer checkpoints
 * into the feeds of other servers (the changes-feed-with-checkpoint design of
 * CouchDB replication). Every item this node stores gets the next local
 * sequence number; a server that has pulled a peer's feed up to sequence S
 * remembers (peer epoch, S) and, after a short outage, asks only for what
 * came after S: work and bytes follow the changes, not the store size.
 * Range reconciliation (negentropy) stays the fallback: first contact, a
 * rebuilt index (new epoch, numbers restart) or a forgotten checkpoint.
 *
 * Keyspace, inside the index store (all before "u", so an index rebuild drops it):
 *   e                      → epoch of the numbering (random, new on every rebuild)
 *   s<seq: 13 hex digits>  → item id
 *   c<peer address>        → "<epoch> <seq> <updated ms>": we hold all the peer had up to seq
 */
import { randomId } from "../../base/random.js";
import type { ToolDbStorageAdapter } from "../../stores/storage-adapter.js";

const SEQ_DIGITS = 13;
/** Checkpoints kept at most (one per peer server); the least recently updated go first. */
export const MAX_CHECKPOINTS = 1024;

export interface Checkpoint {
  epoch: string;
  seq: number;
}

export interface FeedPage {
  ids: string[];
  /** The sequence number this page reaches: pass it as `after` for the next page. */
  next: number;
  /** More changes follow (up to the head when the page was read). */
  more: boolean;
}

export function seqKey(seq: number): string {
  return `s${seq.toString(16).padStart(SEQ_DIGITS, "0")}`;
}

export function seqValue(seq: number): string {
  return seq.toString(16);
}

export class ChangeFeed {
  epoch = "";
  /** Last sequence number handed out. */
  private last = 0;
  /** Numbers handed out whose entries are not written yet. */
  private readonly writing = new Set<number>();
  private checkpoints = 0;

  constructor(private readonly store: ToolDbStorageAdapter) {}

  /** Starts a new numbering (empty or rebuilt index). */
  async reset(): Promise<void> {
    this.epoch = randomId();
    this.last = 0;
    await this.store.put("e", this.epoch);
  }

  /** Continues the numbering of a cleanly closed index; false when it has none (an older index: rebuild). */
  async resume(last: number): Promise<boolean> {
    const epoch = await this.store.get("e");
    if (!epoch) return false;
    this.epoch = epoch;
    this.last = last;
    for await (const _ of this.store.range({ gte: "c", lt: "d" })) this.checkpoints++;
    return true;
  }

  /** The last number handed out (persisted on a clean close). */
  get lastSeq(): number {
    return this.last;
  }

  /**
   * The highest number at or below which every entry is written: what a peer
   * may be told it has seen. An entry still being written holds it back, so a
   * checkpoint can never skip a change.
   */
  get head(): number {
    let head = this.last;
    for (const seq of this.writing) head = Math.min(head, seq - 1);
    return head;
  }

  /** Hands out the next number; `written` must follow, whatever happens. */
  reserve(): number {
    const seq = ++this.last;
    this.writing.add(seq);
    return seq;
  }

  written(seq: number): void {
    this.writing.delete(seq);
  }

  /** Ids of the changes after `after`, up to the head (or `upTo` if lower), at most `limit`. */
  async page(after: number, limit: number, upTo = Infinity): Promise<FeedPage> {
    const head = Math.min(this.head, upTo);
    const ids: string[] = [];
    let next = Math.max(after, 0);
    if (after < head) {
      for await (const [key, id] of this.store.range({ gt: seqKey(after), lte: seqKey(head), limit })) {
        ids.push(id);
        next = parseInt(key.slice(1), 16);
      }
      if (ids.length < limit) next = head;
    }
    return { ids, next, more: next < head };
  }

  async checkpoint(peer: string): Promise<Checkpoint | undefined> {
    const raw = await this.store.get(`c${peer}`);
    const m = raw?.match(/^(\S+) (\d+) \d+$/);
    return m ? { epoch: m[1]!, seq: Number(m[2]) } : undefined;
  }

  async setCheckpoint(peer: string, cp: Checkpoint, now: number): Promise<void> {
    const key = `c${peer}`;
    const fresh = (await this.store.get(key)) === undefined;
    await this.store.put(key, `${cp.epoch} ${cp.seq} ${now}`);
    if (fresh && ++this.checkpoints > MAX_CHECKPOINTS) await this.evictOldest();
  }

  async forgetCheckpoints(): Promise<void> {
    for await (const [key] of this.store.range({ gte: "c", lt: "d" })) await this.store.del(key);
    this.checkpoints = 0;
  }

  private async evictOldest(): Promise<void> {
    let oldest: { key: string; at: number } | undefined;
    for await (const [key, value] of this.store.range({ gte: "c", lt: "d" })) {
      const at = Number(value.split(" ")[2]);
      if (!oldest || at < oldest.at) oldest = { key, at };
    }
    if (oldest) {
      await this.store.del(oldest.key);
      this.checkpoints--;
    }
  }
}
