/**
 * Time is injected everywhere a timer, backoff or interval is used, so tests
 * can drive time deterministically instead of sleeping.
 */
export type TimerHandle = { readonly __timer: unique symbol } | ReturnType<typeof setTimeout>;

export interface Clock {
  /** Wall-clock time (ms since the epoch, as Date.now()): for timestamps stored or sent. */
  now(): number;
  /**
   * Monotonic time (ms, any origin, as performance.now()): for due-times of
   * timers, which run on the monotonic clock. A wall-clock step (NTP, a VM
   * resumed, an operator's `date -s`) moves `now()` and not this: a deadline
   * `now() + ms` an hour behind after a step back armed its timer an hour
   * late. A clock without it uses `now()` (a virtual clock reads the same).
   */
  monotonic?(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return t;
  },
  clearTimeout: (h) => {
    if (h !== undefined) clearTimeout(h as ReturnType<typeof setTimeout>);
  },
};

/** `clock`'s monotonic time (its `now()` when it has none). */
export function monotonicNow(clock: Clock = systemClock): number {
  return clock.monotonic ? clock.monotonic() : clock.now();
}

/**
 * A set of timers owned by one component; `clearAll()` on close guarantees no
 * timer outlives its owner.
 */
export class TimerGroup {
  private readonly handles = new Set<TimerHandle>();
  /** Bumped by clearAll, so a repeating timer whose callback cleared the group does not reschedule itself. */
  private epoch = 0;
  constructor(private readonly clock: Clock = systemClock) {}

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = this.clock.setTimeout(() => {
      this.handles.delete(handle);
      fn();
    }, ms);
    this.handles.add(handle);
    return handle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.handles.delete(handle);
    this.clock.clearTimeout(handle);
  }

  /** Repeats `fn` every `ms` until cleared; returns a function that stops it. */
  every(ms: number, fn: () => void): () => void {
    let handle: TimerHandle | undefined;
    let stopped = false;
    const epoch = this.epoch;
    const tick = () => {
      if (stopped) return;
      fn();
      if (!stopped && this.epoch === epoch) handle = this.setTimeout(tick, ms);
    };
    handle = this.setTimeout(tick, ms);
    return () => {
      stopped = true;
      this.clearTimeout(handle);
    };
  }

  get size(): number {
    return this.handles.size;
  }

  /** The group's clock's time (wall clock). */
  now(): number {
    return this.clock.now();
  }

  /** The group's clock's monotonic time: due-times of its timers (`monotonicNow`). */
  monotonic(): number {
    return monotonicNow(this.clock);
  }

  clearAll(): void {
    this.epoch++;
    for (const h of this.handles) this.clock.clearTimeout(h);
    this.handles.clear();
  }
}

/** The longest delay a timer takes (Node fires a longer one after 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One pending call of `fn` at a time on the group's clock: the earliest
 * asked for, in the clock's monotonic time (`TimerGroup.monotonic`), so a
 * wall-clock step neither delays nor hastens it. Whoever compares deadlines
 * must still ask again in `fn` for a deadline still ahead: a system timer can
 * fire a millisecond before the clock reaches the deadline it was set for
 * (libuv counts whole milliseconds of a loop time read before the timer was
 * set). ServerSelection, counting on its
 * one timer, then found the penalised server not due yet and set none again:
 * the server waited for the next refresh, 30 s by default
 * (test/early-timers.test.ts).
 */
export class Wake {
  private handle: TimerHandle | undefined;
  private time = Infinity;

  constructor(
    private readonly timers: TimerGroup,
    private readonly fn: () => void,
  ) {}

  /** Calls `fn` at `time` (ms, the clock's monotonic time), unless a call is due earlier already. Past a timer's range, `fn` runs early and asks again. */
  at(time: number): void {
    if (this.handle !== undefined && this.time <= time) return;
    this.timers.clearTimeout(this.handle);
    this.time = time;
    const run = () => {
      this.handle = undefined;
      this.fn();
    };
    this.handle = this.timers.setTimeout(run, Math.min(MAX_TIMER_MS, Math.max(0, time - this.timers.monotonic())));
  }
}
