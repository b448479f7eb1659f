/**
 * A token bucket: `rate` tokens per second up to `burst`. Time comes from
 * `now` (an injected clock in tests), so it is deterministic; time going
 * back (a wall clock stepped back) refills nothing and holds nothing back.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    // A wall clock stepped back (NTP, a resumed VM): refill from there, not once it is back where it was (an hour's step, an hour).
    if (t < this.last) this.last = t;
    if (t > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000);
      this.last = t;
    }
  }

  /** Takes `n` tokens if there are that many, and `keep` more left after. */
  tryTake(n = 1, keep = 0): boolean {
    if (this.rate === Infinity) return true;
    this.refill();
    if (this.tokens < n + keep) return false;
    this.tokens -= n;
    return true;
  }

  /** Takes `n` more tokens for something already let through: the bucket may go into debt, which later takes wait out. */
  charge(n: number): void {
    if (this.rate === Infinity || n <= 0) return;
    this.refill();
    this.tokens -= n;
  }

  /** Milliseconds until `n` tokens are available (0 when they are now). */
  msUntil(n = 1): number {
    if (this.rate === Infinity) return 0;
    this.refill();
    if (this.tokens >= n) return 0;
    if (this.rate <= 0) return Infinity;
    return Math.ceil(((n - this.tokens) * 1000) / this.rate);
  }
}
