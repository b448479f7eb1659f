/**
 * Virtual time for the simulator: a Clock whose timers fire only when the
 * driver advances it, in time order, and only once every node is idle. A
 * node's real asynchronous work (signature checks on libuv's pool, promise
 * chains, setImmediate turns) runs to completion between two virtual
 * instants, so processing takes no virtual time and a run is repeatable.
 */
import type { Clock, TimerHandle } from "../src/base/clock.js";
import { AsyncWork } from "./async-work.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class SimClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly heap: Timer[] = [];
  /** Timers fired so far (progress lines). */
  fired = 0;

  constructor(
    start: number,
    readonly work: AsyncWork = new AsyncWork(),
  ) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: ++this.seq, fn, cancelled: false };
    this.push(timer);
    this.work.touch();
    return timer as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) (handle as unknown as Timer).cancelled = true;
  }

  /** Timers not yet fired (cancelled ones included until they reach the top). */
  get pending(): number {
    return this.heap.length;
  }

  /**
   * Moves virtual time to `end`: waits until every node is idle, fires the
   * timers due next (all of one instant together), and repeats.
   */
  async advanceTo(end: number): Promise<void> {
    for (;;) {
      await this.work.settle();
      const next = this.peek();
      if (!next || next.at > end) break;
      this.time = next.at;
      while (this.heap.length > 0 && this.heap[0]!.at === this.time) {
        const timer = this.pop()!;
        if (timer.cancelled) continue;
        this.fired++;
        timer.fn();
      }
    }
    await this.work.settle();
    if (end > this.time) this.time = end;
  }

  advance(ms: number): Promise<void> {
    return this.advanceTo(this.time + ms);
  }

  /** Advances until `done()` holds (checked at every instant), or `limitMs` of virtual time passed; true if it held. */
  async advanceUntil(done: () => boolean, limitMs: number, stepMs = 10): Promise<boolean> {
    const end = this.time + limitMs;
    while (!done()) {
      if (this.time >= end) return false;
      await this.advanceTo(Math.min(end, this.time + stepMs));
    }
    return true;
  }

  private peek(): Timer | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0];
  }

  private before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && this.before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}
