import { type Clock, type TimerGroup, monotonicNow } from "../base/clock.js";
import { jittered } from "./options.js";
import { RepeatingCall } from "./repeating-call.js";

/** What the loop needs from the DHT: bittorrent-dht's lookup() shape. */
export type LookupFn = (infoHash: Buffer, cb: (err: Error | null, nodes?: number) => void) => () => void;

export interface LookupLoopConfig {
  lookup: LookupFn;
  timers: TimerGroup;
  clock: Clock;
  random: () => number;
  fastInterval: number;
  slowInterval: number;
  /** First re-lookup delay while unsatisfied; doubles up to fastInterval. */
  warmupInterval: number;
  jitter: number;
  timeout: number;
  /** True once the consumer has the peers it wants: the loop then runs at the slow pace. */
  isSatisfied(): boolean;
  beforeLookup(): void;
  onResult(err: Error | null, nodes: number): void;
}

/**
 * Repeats get_peers lookups for one info hash on an adaptive schedule: every
 * fastInterval while unsatisfied, every slowInterval once satisfied. At most
 * one lookup is in flight, and refresh() never starts lookups closer
 * together than fastInterval. Periods run from the start of a lookup, so a
 * slow lookup (dead nodes time out) does not stretch them. Right after
 * start or refresh, unsatisfied lookups warm up: warmupInterval, doubling
 * up to fastInterval, so a peer that announces a moment after us is found
 * in tens of milliseconds rather than a full fastInterval later.
 */
export class LookupLoop extends RepeatingCall {
  private nextAt = Number.POSITIVE_INFINITY;
  private rerun = false;
  private lastStart = Number.NEGATIVE_INFINITY;
  /** Unsatisfied lookups since start/refresh/satisfaction (drives the warm-up). */
  private warmupStep = 0;

  constructor(
    readonly infoHash: Buffer,
    private readonly cfg: LookupLoopConfig,
  ) {
    super(cfg.timers, cfg.timeout, "lookup");
  }

  /** Look up as soon as the rate limit allows (right after the current lookup, if one runs). */
  refresh(): void {
    if (this.stopped) return;
    this.warmupStep = 0;
    if (this.inFlight) this.rerun = true;
    else this.scheduleAtMost(this.earliestStartDelay());
  }

  /** Satisfaction may have dropped: bring a slow wait forward to the fast pace. */
  hurry(): void {
    if (this.stopped || this.inFlight) return; // the pace is re-evaluated when it completes
    const pace = jittered(this.cfg.fastInterval, this.cfg.jitter, this.cfg.random);
    this.scheduleAtMost(Math.max(pace, this.earliestStartDelay()));
  }

  private pace(): number {
    if (this.cfg.isSatisfied()) {
      this.warmupStep = 0;
      return this.cfg.slowInterval;
    }
    const warm = this.cfg.warmupInterval * 2 ** this.warmupStep++;
    return Math.min(this.cfg.fastInterval, warm);
  }

  private earliestStartDelay(): number {
    return Math.max(0, this.lastStart + this.cfg.fastInterval - monotonicNow(this.cfg.clock));
  }

  /** (Re)schedules the next run unless one is already due sooner. */
  private scheduleAtMost(delay: number): void {
    const at = monotonicNow(this.cfg.clock) + delay;
    if (this.timer !== undefined && this.nextAt <= at) return;
    this.timers.clearTimeout(this.timer);
    this.nextAt = at;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.nextAt = Number.POSITIVE_INFINITY;
      this.run();
    }, delay);
  }

  protected run(): void {
    if (!this.idle) return;
    this.rerun = false;
    this.lastStart = monotonicNow(this.cfg.clock);
    this.call(
      (cb) => {
        this.cfg.beforeLookup();
        return this.cfg.lookup(this.infoHash, cb);
      },
      (err, nodes) => {
        if (this.rerun) {
          this.rerun = false;
          this.scheduleAtMost(this.earliestStartDelay());
        } else {
          const pace = jittered(this.pace(), this.cfg.jitter, this.cfg.random);
          this.scheduleAtMost(Math.max(0, this.lastStart + pace - monotonicNow(this.cfg.clock)));
        }
        this.cfg.onResult(err, nodes);
      },
    );
  }
}
