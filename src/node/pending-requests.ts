import { TimerGroup, systemClock, type Clock, type TimerHandle } from "../base/clock.js";
import { RequestShares, type RequestOwner } from "./request-shares.js";

interface Pending<T, S> {
  /** `from`: who sent the reply, when the caller knows (the node passes the peer's session). */
  onReply: (reply: T, from?: S) => boolean | void;
  onTimeout: () => void;
  timer: TimerHandle;
  /** When the timer fires (the clock's monotonic time). */
  dueAt: number;
  /** The key a get asks for, when the request is one (`keyOf`). */
  key?: string;
  /** The hash of the record a get's node held for the key when it asked (`heldOf`). */
  held?: string;
  /** Whom the request is held for (request-shares.ts): none for the node's own. */
  owner?: RequestOwner;
  /** Told of a reply under the id that was handled but not delivered (`refused`). */
  onRefused?: (reply: T, from?: S) => void;
}

/** What `add` may also be told of a request. */
export interface RequestOptions<T, S> {
  /** The key a get asks for (`keyOf`). */
  key?: string | undefined;
  /** The hash of the record this node held for `key` when it asked, if any (`heldOf`). */
  held?: string | undefined;
  /** The peer it is held for (request-shares.ts); none for the node's own requests. */
  owner?: RequestOwner | undefined;
  /** Called for a reply under the id that was handled but not delivered: refused (see `refused`). */
  onRefused?: ((reply: T, from?: S) => void) | undefined;
}

/**
 * Requests waiting for replies by message id, each with a timeout. Entries
 * are removed on completion or timeout and capped in number, so a flood of
 * unanswered requests cannot grow memory (tool-db 2.6.6 leaked these).
 * A request held for a peer counts against that peer's and its site's share,
 * and a full table gives up the oldest request of whoever holds the most.
 */
export class PendingRequests<T, S = unknown> {
  private readonly pending = new Map<string, Pending<T, S>>();
  private readonly timers: TimerGroup;
  readonly shares: RequestShares;

  constructor(
    readonly capacity: number,
    clock: Clock = systemClock,
  ) {
    this.timers = new TimerGroup(clock);
    this.shares = new RequestShares(capacity);
  }

  /**
   * Registers a request. `onReply` returning true keeps it open for more
   * replies (queries collect several). When the table is full, the oldest
   * request of the peer or site holding the most (else the oldest) is timed
   * out early. Returns false (nothing added) when the peer it is held for
   * (`options.owner`), or its address site, holds its share.
   */
  add(id: string, timeoutMs: number, onReply: (reply: T, from?: S) => boolean | void, onTimeout: () => void, options: RequestOptions<T, S> = {}): boolean {
    const { key, held, owner, onRefused } = options;
    this.remove(id); // a reused id replaces the old request (and its timer)
    if (owner && !this.shares.mayAdd(owner)) return false;
    if (this.pending.size >= this.capacity) this.expire(this.shares.heaviest() ?? (this.pending.keys().next().value as string));
    const timer = this.timers.setTimeout(() => this.expire(id), timeoutMs);
    this.pending.set(id, { onReply, onTimeout, timer, dueAt: this.timers.monotonic() + timeoutMs, key, held, owner, onRefused });
    if (owner) this.shares.add(id, owner);
    return true;
  }

  has(id: string): boolean {
    return this.pending.has(id);
  }

  /** The key the get waiting under `id` asks for (undefined for other requests). */
  keyOf(id: string): string | undefined {
    return this.pending.get(id)?.key;
  }

  /** The hash of the record held for the key when the get waiting under `id` was sent (a reply of it delivers nothing new). */
  heldOf(id: string): string | undefined {
    return this.pending.get(id)?.held;
  }

  /** Delivers a reply; returns false when nobody waits for this id. */
  resolve(id: string, reply: T, from?: S): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    const keepOpen = entry.onReply(reply, from) === true;
    if (!keepOpen && this.pending.get(id) === entry) this.remove(id);
    return true;
  }

  /**
   * A reply under `id` was handled and not delivered (the record it carried
   * was refused): the request stays open; one that asked (`onRefused`) is told.
   */
  refused(id: string, reply: T, from?: S): void {
    this.pending.get(id)?.onRefused?.(reply, from);
  }

  /** Times the request out within `ms` (sooner if it was due sooner): a request that got its first answer waits a short grace for more. */
  hurry(id: string, ms: number): void {
    const entry = this.pending.get(id);
    if (!entry || entry.dueAt <= this.timers.monotonic() + ms) return;
    this.timers.clearTimeout(entry.timer);
    entry.dueAt = this.timers.monotonic() + ms;
    entry.timer = this.timers.setTimeout(() => this.expire(id), ms);
  }

  remove(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.timers.clearTimeout(entry.timer);
    this.pending.delete(id);
    if (entry.owner) this.shares.remove(id, entry.owner);
  }

  private expire(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.remove(id);
    entry.onTimeout();
  }

  get size(): number {
    return this.pending.size;
  }

  /** Times out everything now (used by close). */
  clear(): void {
    for (const id of [...this.pending.keys()]) this.expire(id);
    this.timers.clearAll();
  }
}
