import { Backoff } from "../core/backoff.js";
import type { TimerGroup, TimerHandle } from "../core/clock.js";
import { boundedCall } from "./bounded-call.js";
import { jittered } from "./options.js";

/** What an announcer needs from the DHT. */
export type AnnounceFn = (infoHash: Buffer, port: number, cb: (err: Error | null, nodes?: number) => void) => void;

export interface AnnouncerConfig {
  announce: AnnounceFn;
  timers: TimerGroup;
  random: () => number;
  interval: number;
  jitter: number;
  /** First retry delay after a failed announce (grows up to `interval`). */
  retryInitial: number;
  timeout: number;
  onResult(err: Error | null, nodes: number): void;
}

/**
 * Announces (infoHash → port) now and every `interval`; a failed announce
 * (e.g. "No nodes to query" before the DHT is bootstrapped) is retried with
 * backoff. At most one announce is in flight.
 */
export class Announcer {
  private timer: TimerHandle | undefined;
  /** Cancels the operation in flight. */
  private cancel: (() => void) | undefined;
  private inFlight = false;
  private stopped = false;
  private readonly backoff: Backoff;

  constructor(
    readonly infoHash: Buffer,
    readonly port: number,
    private readonly cfg: AnnouncerConfig,
  ) {
    this.backoff = new Backoff({ initial: cfg.retryInitial, max: cfg.interval, random: cfg.random });
  }

  start(): void {
    this.run();
  }

  stop(): void {
    this.stopped = true;
    this.cfg.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.cancel?.();
    this.cancel = undefined;
  }

  private run(): void {
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    this.cancel = boundedCall(
      this.cfg.timers,
      this.cfg.timeout,
      "announce",
      (cb) => this.cfg.announce(this.infoHash, this.port, cb),
      (err, nodes) => {
        this.inFlight = false;
        this.cancel = undefined;
        if (this.stopped) return;
        let delay: number;
        if (err) {
          delay = this.backoff.next();
        } else {
          this.backoff.reset();
          delay = jittered(this.cfg.interval, this.cfg.jitter, this.cfg.random);
        }
        this.timer = this.cfg.timers.setTimeout(() => this.run(), delay);
        this.cfg.onResult(err, nodes);
      },
    );
  }
}
