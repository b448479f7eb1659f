import { TimerGroup, type Clock, type TimerHandle } from "../base/clock.js";

interface Pending<T> {
  onReply: (reply: T) => boolean | void;
  onTimeout: () => void;
  timer: TimerHandle;
}

/**
 * Requests waiting for replies by message id, each with a timeout. Entries
 * are removed on completion or timeout and capped in number, so a flood of
 * unanswered requests cannot grow memory (tool-db 2.6.6 leaked these).
 */
export class PendingRequests<T> {
  private readonly pending = new Map<string, Pending<T>>();
  private readonly timers: TimerGroup;

  constructor(
    readonly capacity: number,
    clock?: Clock,
  ) {
    this.timers = new TimerGroup(clock);
  }

  /**
   * Registers a request. `onReply` returning true keeps it open for more
   * replies (queries collect several). The oldest request is timed out early
   * when the table is full.
   */
  add(id: string, timeoutMs: number, onReply: (reply: T) => boolean | void, onTimeout: () => void): void {
    this.remove(id); // a reused id replaces the old request (and its timer)
    if (this.pending.size >= this.capacity) {
      const oldest = this.pending.keys().next().value as string;
      this.expire(oldest);
    }
    const timer = this.timers.setTimeout(() => this.expire(id), timeoutMs);
    this.pending.set(id, { onReply, onTimeout, timer });
  }

  has(id: string): boolean {
    return this.pending.has(id);
  }

  /** Delivers a reply; returns false when nobody waits for this id. */
  resolve(id: string, reply: T): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    const keepOpen = entry.onReply(reply) === true;
    if (!keepOpen) this.remove(id);
    return true;
  }

  remove(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.timers.clearTimeout(entry.timer);
    this.pending.delete(id);
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
