import type { TimerGroup, TimerHandle } from "../base/clock.js";
import { type DhtCall, boundedCall } from "./bounded-call.js";

/**
 * One DHT operation (an announce, a lookup) run again and again: at most one
 * in flight, each bounded in time (boundedCall), one timer for the next run,
 * and `stop()` that cancels both. Subclasses decide when the next run is
 * (`run` on their schedule).
 */
export abstract class RepeatingCall {
  protected timer: TimerHandle | undefined;
  protected inFlight = false;
  protected stopped = false;
  /** Cancels the operation in flight. */
  private cancel: (() => void) | undefined;

  constructor(
    protected readonly timers: TimerGroup,
    private readonly timeout: number,
    private readonly label: string,
  ) {}

  start(): void {
    this.run();
  }

  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.cancel?.();
    this.cancel = undefined;
  }

  /** One run: usually `if (this.idle) { …; this.call(…) }`. */
  protected abstract run(): void;

  /** Neither stopped nor running the operation. */
  protected get idle(): boolean {
    return !this.stopped && !this.inFlight;
  }

  /** Runs the operation once; `settled` hears its outcome unless stop() came first. */
  protected call(operation: DhtCall, settled: (err: Error | null, nodes: number) => void): void {
    this.inFlight = true;
    this.cancel = boundedCall(this.timers, this.timeout, this.label, operation, (err, nodes) => {
      this.inFlight = false;
      this.cancel = undefined;
      if (!this.stopped) settled(err, nodes);
    });
  }
}
