/**
 * The relay measurement both relay benchmarks share (bench/relay.ts: a
 * server in a child process; bench/relay-transport.ts: per transport, all
 * in this process): a subscriber listens on `keys` keys, a writer sends
 * presigned puts straight to the network, and every arrival is timed
 * against its send. `oneAtATime` gives unloaded latency, `windowed`
 * throughput with a bounded number of puts in flight.
 */
import type { ToolDb, ToolDbRecord } from "../src/index.js";

/** How long the loop waits for the next arrival before it gives up. */
const STALL_MS = 60_000;

export class RelayLoop {
  /** Puts the subscriber got so far. */
  received = 0;
  private readonly sentAt: Float64Array;
  private readonly latencies: number[] = [];
  private wake: (() => void) | undefined;

  private constructor(
    private readonly writer: ToolDb,
    private readonly records: ToolDbRecord[],
    private readonly idPrefix: string,
  ) {
    this.sentAt = new Float64Array(records.length);
  }

  /** Subscribes `subscriber` to `<keyPrefix>0 .. <keyPrefix>{keys-1}` (the keys `presign` writes) and settles. */
  static async start(writer: ToolDb, subscriber: ToolDb, records: ToolDbRecord[], keyPrefix: string, keys: number, idPrefix: string): Promise<RelayLoop> {
    const loop = new RelayLoop(writer, records, idPrefix);
    for (let k = 0; k < keys; k++) {
      subscriber.addKeyListener(`${keyPrefix}${k}`, (r) => loop.arrived((r.v as { n: number }).n));
      await subscriber.subscribeData(`${keyPrefix}${k}`);
    }
    await new Promise((r) => setTimeout(r, 200));
    return loop;
  }

  private arrived(n: number): void {
    this.latencies.push(performance.now() - this.sentAt[n]!);
    this.received++;
    this.wake?.();
  }

  private send(n: number): void {
    this.sentAt[n] = performance.now();
    this.writer.network.sendToAll({ type: "put", id: `${this.idPrefix}${n}`, data: this.records[n]! });
  }

  /** Waits until `target` puts arrived; fails when none arrives for STALL_MS (a lost put would otherwise hang the run). */
  private async reached(target: number): Promise<void> {
    if (this.received >= target) return;
    let seen = this.received;
    let stalled: ((err: Error) => void) | undefined;
    const watch = setInterval(() => {
      if (this.received === seen) stalled?.(new Error(`relay bench: no put arrived for ${STALL_MS / 1000} s (${this.received} of ${target} arrived)`));
      seen = this.received;
    }, STALL_MS);
    try {
      while (this.received < target) {
        await new Promise<void>((resolve, reject) => {
          this.wake = resolve;
          stalled = reject;
        });
      }
    } finally {
      clearInterval(watch);
    }
  }

  /** Sends records [0, count) one at a time; returns the latencies (ms) so far, sorted. */
  async oneAtATime(count: number): Promise<number[]> {
    for (let n = 0; n < count; n++) {
      this.send(n);
      await this.reached(n + 1);
    }
    return [...this.latencies].sort((a, b) => a - b);
  }

  /** Sends records [from, to) with at most `window` in flight, until all arrived; returns the time taken (ms). */
  async windowed(from: number, to: number, window: number): Promise<number> {
    const start = performance.now();
    let next = from;
    while (next < to) {
      while (next < to && next - this.received < window) this.send(next++);
      await this.reached(Math.min(next, next - window / 2));
    }
    await this.reached(to);
    return performance.now() - start;
  }
}
