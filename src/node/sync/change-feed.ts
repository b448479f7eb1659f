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
 *   c<peer address>        → "<epoch> <seq> <updated ms>[ <peer IP>]": we hold all the peer had up to seq
 *   r<peer address>        → ids (space-separated) of sign-ups its feed listed before seq that a quota that
 *                            refills refused: fetched again once it refills (sign-up-retries.ts); goes with c<peer>
 *
 * The table is bounded, and anyone can be a server and commit a checkpoint
 * here (docs/security.md): fresh identities from one host must not push out
 * the checkpoints of servers that really synced. So one IP holds at most
 * MAX_CHECKPOINTS_PER_IP and one address range (/24, /64) MAX_CHECKPOINTS_PER_RANGE
 * (a newcomer past them replaces its own IP's or range's least recently
 * updated), and past MAX_CHECKPOINTS the most crowded range gives way first.
 * Checkpoints without an IP (exempt IPs: this host, a reverse proxy) stand alone.
 */
import { randomId } from "../../base/random.js";
import { addressRange } from "../../limits/address-range.js";
import type { ToolDbStorageAdapter } from "../../stores/storage-adapter.js";

const SEQ_DIGITS = 13;
/** Checkpoints kept at most (one per peer server); the most crowded address range gives way first. */
export const MAX_CHECKPOINTS = 1024;
/** Of those, at most this many from one IP (several servers may share a host)... */
export const MAX_CHECKPOINTS_PER_IP = 16;
/** ...and from one address range (/24, /64). */
export const MAX_CHECKPOINTS_PER_RANGE = 64;

/** A checkpoint's place in the table: when it was last updated, and where its peer linked from; and the checkpoint. */
interface Entry {
  at: number;
  ip?: string;
  range?: string;
  cp?: Checkpoint;
}

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
  /** Every stored checkpoint by key (at most MAX_CHECKPOINTS + a few in flight). */
  private readonly table = new Map<string, Entry>();
  /** Per checkpoint key, the last write of it under way (`setCheckpoint`: one after the other). */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(private readonly store: ToolDbStorageAdapter) {}

  /** Starts a new numbering (empty or rebuilt index). */
  async reset(): Promise<void> {
    this.epoch = randomId();
    this.last = 0;
    this.table.clear();
    await this.store.put("e", this.epoch);
  }

  /** Continues the numbering of a cleanly closed index; false when it has none (an older index: rebuild). */
  async resume(last: number): Promise<boolean> {
    const epoch = await this.store.get("e");
    if (!epoch) return false;
    this.epoch = epoch;
    this.last = last;
    this.table.clear();
    for await (const [key, value] of this.store.range({ gte: "c", lt: "d" })) {
      const [epoch, seq, at, ip] = value.split(" ");
      this.table.set(key, entry(Number(at), ip, { epoch: epoch!, seq: Number(seq) }));
    }
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
    const m = raw?.match(/^(\S+) (\d+) \d+(?: \S+)?$/);
    return m ? { epoch: m[1]!, seq: Number(m[2]) } : undefined;
  }

  /**
   * `ip`: where the peer linked from; undefined for an exempt IP (its checkpoint stands alone).
   *
   * Never backwards within an epoch: a write below the checkpoint held (the table's) is skipped, and the writes of one
   * peer's checkpoint go one after the other (each store write after the last). Two sides write it: our own runs with the peer
   * (one at a time per address, peer-runs.ts) and the peer's runs with us (its syncCommit, on the link it dialed).
   * A run that began before the peer's commit settled at the head it saw then and put the checkpoint back before
   * records the commit had counted: the next run listed them again. Not the per-address lock instead: our run holds it
   * for its whole length, and a commit waiting for it would outlast the peer's request (and two servers each running
   * with the other would wait on each other). Both claims say the records up to their number are stored here, so
   * the higher holds. A write in another epoch (the peer's index rebuilt) replaces the checkpoint: epochs are not ordered.
   */
  async setCheckpoint(peer: string, cp: Checkpoint, now: number, ip?: string): Promise<void> {
    const key = `c${peer}`;
    const write = (this.writes.get(key) ?? Promise.resolve()).then(() => this.write(peer, cp, now, ip));
    const done = write.catch(() => undefined);
    this.writes.set(key, done);
    try {
      await write;
    } finally {
      if (this.writes.get(key) === done) this.writes.delete(key);
    }
  }

  private async write(peer: string, cp: Checkpoint, now: number, ip?: string): Promise<void> {
    const key = `c${peer}`;
    const known = this.table.get(key)?.cp;
    if (known && known.epoch === cp.epoch && known.seq > cp.seq) return;
    if (!this.table.has(key)) await this.makeRoom(ip);
    this.table.set(key, entry(now, ip, cp));
    await this.store.put(key, `${cp.epoch} ${cp.seq} ${now}${ip ? ` ${ip}` : ""}`);
  }

  async forgetCheckpoints(): Promise<void> {
    for await (const [key] of this.store.range({ gte: "c", lt: "d" })) await this.evict([key, { at: 0 }]);
    this.table.clear();
  }

  /** Ids of the peer's sign-ups to fetch again (written before a checkpoint moves past them). */
  async retries(peer: string): Promise<string[]> {
    const raw = await this.store.get(`r${peer}`);
    return raw ? raw.split(" ") : [];
  }

  async setRetries(peer: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.store.put(`r${peer}`, ids.join(" "));
    else await this.store.del(`r${peer}`);
  }

  /** Checkpoints held (for tests and metrics). */
  get checkpoints(): number {
    return this.table.size;
  }

  /** Before a new checkpoint from `ip`: its IP's or range's oldest goes when they hold their share, else the most crowded range's when full. */
  private async makeRoom(ip: string | undefined): Promise<void> {
    const range = ip === undefined ? undefined : entry(0, ip).range;
    const sameIp = [...this.table].filter(([, e]) => ip !== undefined && e.ip === ip);
    if (sameIp.length >= MAX_CHECKPOINTS_PER_IP) return this.evict(oldest(sameIp));
    const sameRange = [...this.table].filter(([, e]) => range !== undefined && e.range === range);
    if (sameRange.length >= MAX_CHECKPOINTS_PER_RANGE) return this.evict(oldest(sameRange));
    if (this.table.size < MAX_CHECKPOINTS) return;
    const groups = new Map<string, Array<[string, Entry]>>();
    for (const item of this.table) {
      const group = item[1].range ?? item[0];
      const members = groups.get(group);
      if (members) members.push(item);
      else groups.set(group, [item]);
    }
    let pick: Array<[string, Entry]> = [];
    for (const members of groups.values()) {
      if (members.length > pick.length || (members.length === pick.length && oldest(members)[1].at < oldest(pick)[1].at)) pick = members;
    }
    if (pick.length > 0) await this.evict(oldest(pick));
  }

  /** A checkpoint goes with its retries: without it, a range run brings what they were for. */
  private async evict([key]: [string, Entry]): Promise<void> {
    this.table.delete(key);
    await this.store.del(key);
    await this.store.del(`r${key.slice(1)}`);
  }
}

function entry(at: number, ip: string | undefined, cp?: Checkpoint): Entry {
  const held = cp ? { cp: { epoch: cp.epoch, seq: cp.seq } } : {};
  if (!ip) return { at, ...held };
  return { at, ip, range: addressRange(ip) ?? `ip:${ip}`, ...held };
}

function oldest(items: Array<[string, Entry]>): [string, Entry] {
  return items.reduce((a, b) => (b[1].at < a[1].at ? b : a));
}
