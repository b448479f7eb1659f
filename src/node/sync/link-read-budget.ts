/**
 * How many index items one reconciliation message of ours may read (the
 * initiator of range-sync.ts), adapted to the link.
 *
 * The base keeps the messages in flight and the next one inside the index's
 * cache of recent reads: on a fast link the CPU is the bottleneck, and
 * re-reading ranges that fell out of the cache costs more than another
 * round. Across a long round trip the link is the bottleneck instead: with
 * 3 messages of 16,384 reads in flight, 1 % of 1,000,000 records took 71
 * rounds, 14.7 s across 200 ms against 12.0 s in 7 rounds with no budget.
 *
 * So the responder says how long it worked on each message (`ms` of
 * syncRangeAck), and the time the exchange spent on the link is the rest of
 * the wait. The least of `width` replies' is taken: a message that waited
 * at the responder behind another of ours, or a reply that came in while
 * this side was busy (with another reply, or a merge), waited for an event
 * loop, not for the link, and the first of a window does not. The work is
 * the median of the slower side's (the first message of a run costs the
 * responder a read of its whole index). Every `width` replies: while the
 * link took longer than the other `width - 1` messages in flight take to
 * work through, the link holds the pipeline, and after two such windows in
 * a row the budget doubles (up to `max`; on loopback, a single window once
 * grew it, its replies all held behind merges of fetched records); while
 * it took less than half a message's work, it halves back toward the base. An older peer, which sends no `ms`, leaves the base in
 * force.
 */

/**
 * The pipeline is link-bound when a message's round trip (link + work on
 * both sides) is longer than the other messages in flight take to work
 * through: link > (width - 2) × work; growing from (width - 1) leaves a
 * margin for the noise of the readings.
 */
const GROW_ABOVE_OTHERS = 1;
/** Fraction of one message's work below which the link counts as fast again. */
const SHRINK_BELOW = 0.5;

/**
 * The base budget: the messages in flight and the next one then lie in the
 * index's cache of recent reads (each side read the whole index from the
 * store once a round before, at 10 % divergence of 1,000,000 records). On a
 * store much larger than the cache, at least 1/100 of it, so that a run
 * needs a few hundred rounds at most.
 */
export function baseReadsPerMessage(cacheCapacity: number, storeSize: number, width: number): number {
  return Math.max(Math.floor(cacheCapacity / (width + 1)), Math.ceil(storeSize / 100));
}

/** The most a link may raise it to: 8 × the base, or 1/8 of the store, whichever is more. */
export function maxReadsPerMessage(base: number, storeSize: number): number {
  return Math.max(8 * base, Math.ceil(storeSize / 8));
}

export class LinkReadBudget {
  private reads: number;
  private linkMs = Infinity;
  private work: number[] = [];
  /** The window before this one found the link holding the pipeline (one window alone can be a busy spell of this side's event loop). */
  private linkBoundBefore = false;

  constructor(
    readonly base: number,
    readonly max: number,
    /** Messages in flight at once. */
    private readonly width: number,
  ) {
    this.reads = base;
  }

  /** Items the next message may read. */
  get current(): number {
    return this.reads;
  }

  /**
   * One exchange: `waitedMs` from sending our message to its reply,
   * `peerMs` the responder's own time on it (undefined from older peers),
   * `localMs` our time building the message and reading its reply.
   * Returns the budget for the next message.
   */
  observe(waitedMs: number, peerMs: number | undefined, localMs: number): number {
    if (peerMs === undefined || !Number.isFinite(waitedMs) || !Number.isFinite(localMs)) return this.reads;
    this.linkMs = Math.min(this.linkMs, Math.max(0, waitedMs - peerMs));
    this.work.push(Math.max(peerMs, localMs));
    if (this.work.length < this.width) return this.reads;
    const link = this.linkMs;
    const work = this.work.sort((x, y) => x - y)[this.work.length >> 1]!;
    this.work = [];
    this.linkMs = Infinity;
    const linkBound = link > GROW_ABOVE_OTHERS * (this.width - 1) * work;
    if (linkBound && this.linkBoundBefore) this.reads = Math.min(this.max, this.reads * 2);
    else if (link < SHRINK_BELOW * work) this.reads = Math.max(this.base, Math.floor(this.reads / 2));
    this.linkBoundBefore = linkBound && !this.linkBoundBefore; // a growth needs two windows of its own
    return this.reads;
  }
}

/**
 * Wraps an initiator's `next`, remembering how long building each message took (our share of its exchange), less
 * the time it let other work in (`waitedMs`: Turns.waitedMs, which only grows).
 */
export function timedBuilds<M extends object>(next: () => Promise<M | undefined>, waitedMs: () => number = () => 0): { next: () => Promise<M | undefined>; tookMs(message: M): number } {
  const took = new WeakMap<M, number>();
  return {
    next: async () => {
      const started = performance.now() + waitedMs();
      const message = await next();
      if (message) took.set(message, performance.now() + waitedMs() - started);
      return message;
    },
    tookMs: (message) => took.get(message) ?? 0,
  };
}
