import type { TimerGroup, TimerHandle } from "../base/clock.js";
import type { Limits } from "../limits/limits.js";
import { TokenBucket } from "../limits/rate-limiter.js";

/**
 * A frame being handled: a promise keeps it outstanding until it settles,
 * with a weight of 1 unless it says otherwise (see `recordWeight`).
 */
export type Dispatched = Promise<unknown> | { done: Promise<unknown>; weight: number; cost?: number } | void;

/** Bytes of a record message that weigh one outstanding message (see `recordWeight`). */
export const RECORD_WEIGHT_BYTES = 32 * 1024;
/** The least a record message weighs: a peer has up to 8 small puts outstanding per message slot. */
export const MIN_RECORD_WEIGHT = 1 / 8;

/**
 * The weight of a put in the outstanding caps: its size over
 * RECORD_WEIGHT_BYTES, at least MIN_RECORD_WEIGHT. A put costs the server
 * its own bytes and one signature check, nothing it must send back, so
 * small puts take fractions of a slot (a writer keeps enough in flight to
 * keep every verifying core busy) while large ones take more: the bytes of
 * a peer's puts in flight stay bounded by maxOutstandingPerPeer x 32 KiB
 * (plus the one frame that went in while there was room). Requests answered
 * with data (gets, queries, sync) weigh 1: their replies can be far larger
 * than they are.
 */
export function recordWeight(frameLength: number, records = 1): number {
  return Math.max(MIN_RECORD_WEIGHT * records, frameLength / RECORD_WEIGHT_BYTES);
}

/** What an intake drives: the handler of one link's frames, and its transport. */
export interface IntakeSink {
  /** Handles one frame; a returned promise (or weighed promise) keeps it "outstanding" until it settles. */
  dispatch(frame: string): Dispatched;
  /** Stop / restart reading from the transport (backpressure while frames wait). */
  pause(): void;
  resume(): void;
  /** `frame` was dropped: the link's queue is full. */
  overflow(frame: string): void;
  /** True while the peer must read its replies before more of its requests are handled (the send budget says), given how many it has in flight. */
  held(outstanding: number): boolean;
}

/** How often a peer held back for not reading its replies is looked at again (ms). */
const BACKLOG_RECHECK_MS = 20;

/** Runs `fn` after pending I/O (a macrotask), in Node and in browsers. */
const yieldToIo: (fn: () => void) => void =
  typeof setImmediate === "function" ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);

export type IntakeLimits = Pick<Limits, "messageRate" | "messageBurst" | "maxQueuedMessages" | "maxOutstandingPerPeer" | "maxOutstanding"> & {
  /**
   * Length of the frames a link may have waiting (characters, about their
   * bytes); past it a frame overflows as past `maxQueuedMessages`. Servers
   * leave it unset: a paused socket bounds what waits. Clients set it: a
   * browser's WebSocket and a data channel cannot be paused.
   */
  maxQueuedBytes?: number;
};

/** One link's frames: a token bucket, its outstanding count, and a bounded queue. */
export class LinkIntake {
  readonly queue: string[] = [];
  /** Length of the frames in `queue`. */
  queuedBytes = 0;
  outstanding = 0;
  closed = false;
  readonly bucket: TokenBucket;

  constructor(
    private readonly scheduler: FairIntake,
    readonly sink: IntakeSink,
    limits: IntakeLimits,
    now: () => number,
  ) {
    this.bucket = new TokenBucket(limits.messageRate, limits.messageBurst, now);
  }

  /** A frame arrived: handled now if the peer is within its limits, else queued (or dropped when full). */
  push(frame: string): void {
    if (this.closed) return;
    this.scheduler.push(this, frame);
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  /** See FairIntake.shed. */
  shed(keep: (frame: string) => boolean): void {
    this.scheduler.shed(this, keep);
  }
}

/**
 * Message intake of a node (a client runs it with limits of its own:
 * client-intake.ts): each peer has a message rate (token bucket)
 * and a cap on messages being handled at once; all peers share a global
 * cap. A peer over its limits has its frames queued and its socket paused
 * (TCP backpressure slows it down instead of dropping its data); when
 * capacity frees up, waiting peers are served one frame each in turn, so a
 * flooding peer cannot starve the others. A peer that does not read the
 * replies it asked for (held by the server's SendBudget) is not served
 * until it does: otherwise its unread replies pile up in memory.
 */
export class FairIntake {
  private readonly waiting: LinkIntake[] = [];
  /** Weight of the messages being handled (puts weigh less than requests: `recordWeight`). */
  private outstanding = 0;
  /** Messages being handled, each counted once. */
  private handling = 0;
  private pumping = false;
  private pumpQueued = false;
  private closed = false;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  constructor(
    private readonly limits: IntakeLimits,
    private readonly timers: TimerGroup,
    private readonly now: () => number,
  ) {}

  open(sink: IntakeSink): LinkIntake {
    return new LinkIntake(this, sink, this.limits, this.now);
  }

  /** Messages being handled right now, all peers. */
  get inFlight(): number {
    return this.handling;
  }

  /** Peers with frames waiting. */
  get waitingPeers(): number {
    return this.waiting.length;
  }

  /** Frames waiting, all peers. */
  get queuedFrames(): number {
    let n = 0;
    for (const intake of this.waiting) n += intake.queue.length;
    return n;
  }

  /** Length of the frames waiting, all peers. */
  get queuedBytes(): number {
    let n = 0;
    for (const intake of this.waiting) n += intake.queuedBytes;
    return n;
  }

  push(intake: LinkIntake, frame: string): void {
    if (intake.queue.length === 0 && this.tryRun(intake, frame)) return;
    if (this.full(intake, frame)) {
      intake.sink.overflow(frame);
      return;
    }
    intake.queue.push(frame);
    intake.queuedBytes += frame.length;
    if (intake.queue.length === 1) {
      intake.sink.pause();
      this.waiting.push(intake);
      this.schedule();
    }
  }

  /** The link's queue has no room for `frame` (one frame always fits an empty queue). */
  private full(intake: LinkIntake, frame: string): boolean {
    const { maxQueuedMessages, maxQueuedBytes = Infinity } = this.limits;
    return intake.queue.length >= maxQueuedMessages || (intake.queue.length > 0 && intake.queuedBytes + frame.length > maxQueuedBytes);
  }

  private canRun(intake: LinkIntake): boolean {
    return intake.outstanding < this.limits.maxOutstandingPerPeer && this.outstanding < this.limits.maxOutstanding && !this.backlogged(intake);
  }

  private backlogged(intake: LinkIntake): boolean {
    return intake.sink.held(intake.outstanding);
  }

  private tryRun(intake: LinkIntake, frame: string): boolean {
    if (!this.canRun(intake) || !intake.bucket.tryTake()) return false;
    let result: Dispatched;
    try {
      result = intake.sink.dispatch(frame);
    } catch {
      return true; // the sink reports its own failures
    }
    if (!result) return true;
    const pending = "done" in result ? result.done : result;
    const weight = "done" in result ? result.weight : 1;
    // A frame that costs several messages (a put carrying several signed records) pays the rest of its tokens now.
    if ("done" in result && result.cost !== undefined && result.cost > 1) intake.bucket.charge(result.cost - 1);
    intake.outstanding += weight;
    this.outstanding += weight;
    this.handling++;
    const done = () => {
      intake.outstanding -= weight;
      this.outstanding -= weight;
      this.handling--;
      this.pumpSoon();
    };
    pending.then(done, done);
    return true;
  }

  /**
   * Completions settle in microtasks: pumping right there would chain the
   * whole backlog through microtasks without ever letting I/O (heartbeats,
   * other peers' frames) run. So the next turn waits for a macrotask.
   */
  private pumpSoon(): void {
    if (this.pumpQueued || this.closed || this.waiting.length === 0) return;
    this.pumpQueued = true;
    yieldToIo(() => {
      this.pumpQueued = false;
      if (!this.closed) this.pump();
    });
  }

  /**
   * Lets go of the frames of `intake`'s queue that `keep` refuses; a queue
   * left empty stops waiting and its transport is read again.
   */
  shed(intake: LinkIntake, keep: (frame: string) => boolean): void {
    const kept = intake.queue.filter(keep);
    intake.queue.length = 0;
    intake.queue.push(...kept);
    intake.queuedBytes = kept.reduce((n, f) => n + f.length, 0);
    if (kept.length > 0) return;
    const at = this.waiting.indexOf(intake);
    if (at >= 0) this.waiting.splice(at, 1);
    if (!intake.closed) intake.sink.resume();
  }

  /** Stops scheduling turns (the node is closing). */
  close(): void {
    this.closed = true;
  }

  /** Serves waiting peers round-robin, one frame each per turn, while capacity lasts. */
  private pump(): void {
    if (this.pumping || this.waiting.length === 0) return;
    this.pumping = true;
    try {
      let idle = 0;
      while (this.waiting.length > 0 && idle < this.waiting.length) {
        const intake = this.waiting.shift()!;
        if (intake.closed || intake.queue.length === 0) continue;
        if (!this.tryRun(intake, intake.queue[0]!)) {
          this.waiting.push(intake);
          idle++;
          continue;
        }
        idle = 0;
        intake.queuedBytes -= intake.queue.shift()!.length;
        if (intake.queue.length > 0) this.waiting.push(intake);
        else if (!intake.closed) intake.sink.resume();
      }
    } finally {
      this.pumping = false;
    }
    this.schedule();
  }

  /** Wakes up when the first waiting peer that is only short of tokens has one again. */
  private schedule(): void {
    let wait = Infinity;
    for (const intake of this.waiting) {
      if (intake.closed) continue;
      if (this.backlogged(intake)) wait = Math.min(wait, BACKLOG_RECHECK_MS);
      else if (this.canRun(intake)) wait = Math.min(wait, intake.bucket.msUntil());
      // else: woken by a completion
    }
    if (wait === Infinity) return;
    wait = Math.max(1, wait);
    const at = this.now() + wait;
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.timers.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, wait);
  }
}
