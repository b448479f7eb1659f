import { Backoff } from "../base/backoff.js";
import type { TimerGroup } from "../base/clock.js";
import { jittered } from "./options.js";
import { RepeatingCall } from "./repeating-call.js";

/**
 * What an announcer needs from the DHT. `cb` ends the announce; `stored`, if
 * the function calls it, says earlier that `nodes` nodes already hold the
 * announce (an eager announce's first batch, while its lookup still runs).
 */
export type AnnounceFn = (infoHash: Buffer, port: number, cb: (err: Error | null, nodes?: number) => void, stored?: (nodes: number) => void) => void;

export interface AnnouncerConfig {
  announce: AnnounceFn;
  timers: TimerGroup;
  random: () => number;
  interval: number;
  jitter: number;
  /** First retry delay after a failed announce (grows up to `interval`). */
  retryInitial: number;
  timeout: number;
  /** Once per announce: when nodes first hold it (`stored`), or when it ended. */
  onResult(err: Error | null, nodes: number): void;
}

/**
 * Announces (infoHash → port) now and every `interval`; a failed announce
 * (e.g. "No nodes to query" before the DHT is bootstrapped) is retried with
 * backoff. At most one announce is in flight.
 */
export class Announcer extends RepeatingCall {
  private readonly backoff: Backoff;

  constructor(
    readonly infoHash: Buffer,
    readonly port: number,
    private readonly cfg: AnnouncerConfig,
  ) {
    super(cfg.timers, cfg.timeout, "announce");
    this.backoff = new Backoff({ initial: cfg.retryInitial, max: cfg.interval, random: cfg.random });
  }

  protected run(): void {
    if (!this.idle) return;
    let reported = false;
    const stored = (nodes: number) => {
      if (reported || this.stopped || nodes <= 0) return;
      reported = true;
      this.cfg.onResult(null, nodes);
    };
    this.call(
      (cb) => this.cfg.announce(this.infoHash, this.port, cb, stored),
      (err, nodes) => {
        let delay: number;
        if (err) {
          delay = this.backoff.next();
        } else {
          this.backoff.reset();
          delay = jittered(this.cfg.interval, this.cfg.jitter, this.cfg.random);
        }
        this.timer = this.timers.setTimeout(() => this.run(), delay);
        // Nodes that stored it were reported already; what the announce's end adds is not news.
        if (!reported) this.cfg.onResult(err, nodes);
      },
    );
  }
}
