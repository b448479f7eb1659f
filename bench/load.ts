/**
 * The machine's load during a bench part, printed beside its figures: on a
 * shared box the same code measures a third slower or faster from one run
 * to the next, and a figure means little without the load it was taken at.
 */
import { cpus, loadavg } from "node:os";

const SAMPLE_MS = 5_000;

export class LoadSampler {
  private min = Infinity;
  private max = -Infinity;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(intervalMs = SAMPLE_MS) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const one = loadavg()[0]!;
    this.min = Math.min(this.min, one);
    this.max = Math.max(this.max, one);
  }

  /** Stops sampling; the range of the 1-minute load average seen, as text. */
  stop(): string {
    clearInterval(this.timer);
    this.sample();
    return `machine load during this part (1-minute average, ${cpus().length} cores): ${this.min.toFixed(1)}–${this.max.toFixed(1)}`;
  }
}
