import { Backoff } from "../core/backoff.js";
import type { TimerGroup, TimerHandle } from "../core/clock.js";
import { errorText } from "../core/errors.js";
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
  /** Bounds the operation in flight. */
  private guard: TimerHandle | undefined;
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
    this.cfg.timers.clearTimeout(this.guard);
    this.timer = undefined;
    this.guard = undefined;
  }

  private run(): void {
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    let settled = false;
    // bittorrent-dht's callback can take several k-rpc timeouts; bound it.
    this.guard = this.cfg.timers.setTimeout(() => done(new Error("announce timed out")), this.cfg.timeout);
    const done = (err: Error | null, nodes = 0) => {
      if (settled) return;
      settled = true;
      this.cfg.timers.clearTimeout(this.guard);
      this.guard = undefined;
      this.inFlight = false;
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
    };
    try {
      this.cfg.announce(this.infoHash, this.port, (err, nodes) => done(err, nodes ?? 0));
    } catch (err) {
      done(new Error(`announce failed: ${errorText(err)}`));
    }
  }
}
