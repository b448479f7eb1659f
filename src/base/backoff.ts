/**
 * Exponential backoff with full jitter. `random` is injectable so tests get
 * exact delays.
 */
export interface BackoffOptions {
  /** First delay in ms. */
  initial?: number;
  /** Upper bound in ms. */
  max?: number;
  /** Growth factor per attempt. */
  factor?: number;
  /** 0 = no jitter, 1 = delay drawn uniformly from [0, d]. Default 0.5: [d/2, d]. */
  jitter?: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: Required<Omit<BackoffOptions, "random">> = {
  initial: 250,
  max: 30_000,
  factor: 2,
  jitter: 0.5,
};

export class Backoff {
  private attempt = 0;
  private readonly opts: Required<BackoffOptions>;

  constructor(options: BackoffOptions = {}) {
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.opts = { ...DEFAULT_BACKOFF, random: Math.random, ...defined } as Required<BackoffOptions>;
  }

  /** Delay before the next attempt; each call grows the delay. */
  next(): number {
    const { initial, max, factor, jitter, random } = this.opts;
    const base = Math.min(max, initial * factor ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 - jitter * random()));
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Takes back one attempt: the next delay is the one before the last failure. */
  forgive(): void {
    if (this.attempt > 0) this.attempt--;
  }
}
