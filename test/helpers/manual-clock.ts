import type { Clock, TimerHandle } from "../../src/base/clock.js";

/** A clock that moves only when the test says so: timers fire in `advance`. */
export class ManualClock implements Clock {
  private time = 0;
  /** What `stepWall` moved the wall clock by: `now()` only, not `monotonic()` nor the timers. */
  private wallStep = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  /**
   * `start`: the initial time (e.g. Date.now() when signed records must look fresh).
   * `wallLead` (0 to 1 ms): played as Node's clocks are, `now()` (Date.now())
   * reads whole ms of a time that runs this much ahead of the whole ms
   * timers count (libuv's monotonic clock). From a `start` with a fraction of
   * at least 1 - `wallLead`, a timer set for `now() + ms` fires while `now()`
   * still reads one ms short of that, as Node's timers now and then do.
   */
  constructor(
    start = 0,
    private readonly wallLead?: number,
  ) {
    this.time = start;
  }

  now(): number {
    return this.wallStep + (this.wallLead === undefined ? this.time : Math.floor(this.time + this.wallLead));
  }

  /** The time the timers run on (performance.now() in Node): a wall-clock step does not move it. */
  monotonic(): number {
    return this.time;
  }

  /** Steps the wall clock (`now()`) by `ms`, back when negative (NTP, a resumed VM): monotonic time and the timers go on as before. */
  stepWall(ms: number): void {
    this.wallStep += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    const from = this.wallLead === undefined ? this.time : Math.floor(this.time);
    this.timers.set(id, { at: from + ms, fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.timers.delete(handle as unknown as number);
  }

  /** Moves time forward, firing due timers in order (including ones they schedule). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}

/**
 * Real time, except for timers of exactly `gatedMs`: those wait for
 * `advance()`, which fires the ones pending (once each). A node's heartbeat
 * sweep (period `gatedMs`) then moves only when the test says so, while its
 * other timers (WebRTC announces, connect timeouts) run on their own.
 */
export class GatedClock implements Clock {
  private readonly gated = new Map<symbol, () => void>();

  constructor(readonly gatedMs: number) {}

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (ms !== this.gatedMs) return setTimeout(fn, ms);
    const handle = Symbol("gated timer");
    this.gated.set(handle, fn);
    return handle as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (typeof handle === "symbol") this.gated.delete(handle);
    else if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  /** Fires the gated timers pending now (not those they schedule). `ms` must be the gated period. */
  advance(ms: number): void {
    if (ms !== this.gatedMs) throw new Error(`GatedClock advances by ${this.gatedMs} ms only`);
    const due = [...this.gated];
    this.gated.clear();
    for (const [, fn] of due) fn();
  }
}
