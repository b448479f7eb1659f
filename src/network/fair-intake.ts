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
  /** `frame` found no room: the link's queue is full, or (`allLinks`) all links' queues are and this link holds the most. */
  overflow(frame: string, allLinks: boolean): void;
  /**
   * The frames waiting from all links are past the intake's total bound
   * (`maxTotalQueuedBytes`, `maxTotalQueuedMessages`) and this link, not the
   * one whose frame came, holds the most of them: it lets go of what it can
   * (LinkIntake.shed), or is closed.
   */
  crowded?(): void;
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
  /**
   * Frames, and their length, waiting from all links together. Past either,
   * the link holding the most waiting (its share of the bound) lets go
   * first (`IntakeSink.crowded`), so one link's flood costs the others
   * nothing while it holds more than they do. Servers leave them unset.
   */
  maxTotalQueuedMessages?: number;
  maxTotalQueuedBytes?: number;
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
    this.scheduler.shed(this, () => false);
  }

  /** See FairIntake.shed. */
  shed(keep: (frame: string) => boolean): void {
    this.scheduler.shed(this, keep);
  }

  /** See FairIntake.fits. */
  fits(frame: string): boolean {
    return this.scheduler.fits(this, frame);
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
  /** Frames waiting, all links, and their length. */
  private frames = 0;
  private bytes = 0;

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
    return this.frames;
  }

  /** Length of the frames waiting, all peers. */
  get queuedBytes(): number {
    return this.bytes;
  }

  push(intake: LinkIntake, frame: string): void {
    if (intake.queue.length === 0 && this.tryRun(intake, frame)) return;
    if (this.full(intake, frame)) return intake.sink.overflow(frame, false);
    if (!this.roomMade(intake, frame)) return intake.sink.overflow(frame, true);
    intake.queue.push(frame);
    intake.queuedBytes += frame.length;
    this.frames++;
    this.bytes += frame.length;
    if (intake.queue.length === 1) {
      intake.sink.pause();
      this.waiting.push(intake);
      this.schedule();
    }
  }

  /**
   * True when `frame` of `intake` can wait now without overflowing: the
   * link's queue has room, and all links' queues have, once the links
   * holding more than `intake` let go of what they could.
   */
  fits(intake: LinkIntake, frame: string): boolean {
    return !this.full(intake, frame) && this.roomMade(intake, frame);
  }

  /** The link's queue has no room for `frame` (one frame always fits an empty queue). */
  private full(intake: LinkIntake, frame: string): boolean {
    const { maxQueuedMessages, maxQueuedBytes = Infinity } = this.limits;
    return intake.queue.length >= maxQueuedMessages || (intake.queue.length > 0 && intake.queuedBytes + frame.length > maxQueuedBytes);
  }

  /** All links' queues together have no room for `frame` (one frame always fits when nothing waits). */
  private overTotal(frame: string): boolean {
    const { maxTotalQueuedMessages = Infinity, maxTotalQueuedBytes = Infinity } = this.limits;
    return this.frames >= maxTotalQueuedMessages || (this.frames > 0 && this.bytes + frame.length > maxTotalQueuedBytes);
  }

  /**
   * Whether all links' queues have room for `frame` of `intake`, once the
   * links holding more waiting than `intake` let go of what they could,
   * the largest first. False when `intake` holds the most: it overflows.
   */
  private roomMade(intake: LinkIntake, frame: string): boolean {
    // Each turn a link lets go of its records or is closed: a sink that does neither is asked at most twice.
    for (let turns = 0; this.overTotal(frame); turns++) {
      const largest = this.largest(intake);
      if (largest === intake || turns > 2 * this.waiting.length) return false;
      largest.sink.crowded?.();
    }
    return true;
  }

  /** The link holding the largest share of the total bound, by frames or by length; `intake` on a tie. */
  private largest(intake: LinkIntake): LinkIntake {
    const { maxTotalQueuedMessages = Infinity, maxTotalQueuedBytes = Infinity } = this.limits;
    const share = (l: LinkIntake) => Math.max(l.queue.length / maxTotalQueuedMessages, l.queuedBytes / maxTotalQueuedBytes);
    let largest = intake;
    let most = share(intake);
    for (const other of this.waiting) {
      const s = other.closed ? 0 : share(other);
      if (s > most) [largest, most] = [other, s];
    }
    return largest;
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
    const queue = intake.queue;
    let kept = 0;
    let bytes = 0;
    for (const frame of queue) {
      if (!keep(frame)) continue;
      queue[kept++] = frame;
      bytes += frame.length;
    }
    this.frames -= queue.length - kept;
    this.bytes -= intake.queuedBytes - bytes;
    queue.length = kept;
    intake.queuedBytes = bytes;
    if (kept > 0) return;
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
        const length = intake.queue.shift()!.length;
        intake.queuedBytes -= length;
        this.frames--;
        this.bytes -= length;
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
