/**
 * Cached sums of the reconciliation index by bucket of about BUCKET items,
 * so that the fingerprint of a long range costs a scan of at most two
 * partial buckets plus one addition per whole bucket, and a long range is
 * split at bucket bounds without being read. A negentropy fingerprint is
 * built from the sum of the ids (mod 2^256) and their count, so adding or
 * removing an item updates its bucket exactly. Memory: one bound and 40
 * bytes per bucket (about 100 bytes per 256 items: 400 KiB per million).
 *
 * Consistency: every write to the index runs under `write` (shared), which
 * applies it to the sums once the store holds it; building the buckets and
 * splitting one that grew past SPLIT_AT read the store under an exclusive
 * hold, while writes wait. A read combines cached whole buckets with scans
 * of the partial ones; each item is counted in exactly one of them.
 */
import { Accumulator, type Bound, INFINITY_BOUND, type Item, MIN_BOUND, compareBounds, minimalBound } from "./negentropy-codec.js";

const BUCKET = 256;
const SPLIT_AT = 4 * BUCKET;

interface Bucket {
  /** First bound of the bucket; it ends where the next begins. */
  lower: Bound;
  acc: Accumulator;
}

export interface ScanSource {
  scan(lower: Bound, upper: Bound): AsyncIterable<Item>;
}

export class RangeSums {
  private buckets: Bucket[] | undefined;
  private writers = 0;
  private idle: (() => void) | undefined;
  private held: Promise<void> | undefined;
  private splitting = false;

  constructor(private readonly source: ScanSource) {}

  /** Runs one index write; its item changes reach the sums once it succeeded. */
  async write<T>(task: () => Promise<T>, added?: Item, removed?: Item): Promise<T> {
    while (this.held) await this.held;
    this.writers++;
    try {
      const result = await task();
      if (this.buckets) this.apply(this.buckets, added, removed);
      return result;
    } finally {
      if (--this.writers === 0) this.idle?.();
    }
  }

  private apply(buckets: Bucket[], added?: Item, removed?: Item): void {
    if (removed) buckets[this.bucketOf(buckets, removed)]!.acc.remove(removed.id);
    if (!added) return;
    const i = this.bucketOf(buckets, added);
    const acc = buckets[i]!.acc;
    acc.add(added.id);
    if (acc.count > SPLIT_AT && !this.splitting) {
      this.splitting = true;
      void this.exclusively(() => this.split(i)).finally(() => (this.splitting = false));
    }
  }

  /** Adds the items of [lower, upper) to `acc`; returns the index entries read. */
  async sum(lower: Bound, upper: Bound, acc: Accumulator): Promise<number> {
    const buckets = await this.built();
    let m = this.ceil(buckets, lower);
    const first = m;
    const whole = new Accumulator();
    const ends = (k: number) => (k + 1 < buckets.length ? compareBounds(buckets[k + 1]!.lower, upper) <= 0 : upper.t === Infinity);
    for (; m < buckets.length && ends(m); m++) whole.merge(buckets[m]!.acc);
    if (m === first) return this.scanInto(lower, upper, acc);
    let read = await this.scanInto(lower, buckets[first]!.lower, acc);
    acc.merge(whole);
    if (m < buckets.length) read += await this.scanInto(buckets[m]!.lower, upper, acc);
    return read + (m - first);
  }

  /** Bucket bounds strictly inside (lower, upper) cutting it into `parts` pieces of whole buckets, or undefined when it spans too few. */
  async splitPoints(lower: Bound, upper: Bound, parts: number): Promise<Bound[] | undefined> {
    const buckets = await this.built();
    const inside: Bound[] = [];
    for (let m = this.ceil(buckets, lower); m < buckets.length && compareBounds(buckets[m]!.lower, upper) < 0; m++) {
      if (compareBounds(buckets[m]!.lower, lower) > 0) inside.push(buckets[m]!.lower);
    }
    if (inside.length < parts) return undefined;
    return Array.from({ length: parts - 1 }, (_, k) => inside[Math.floor(((k + 1) * inside.length) / parts)]!);
  }

  private async scanInto(lower: Bound, upper: Bound, acc: Accumulator): Promise<number> {
    let n = 0;
    if (compareBounds(lower, upper) >= 0) return 0;
    for await (const item of this.source.scan(lower, upper)) {
      acc.add(item.id);
      n++;
    }
    return n;
  }

  private async built(): Promise<Bucket[]> {
    if (!this.buckets) await this.exclusively(async () => void (this.buckets ??= await this.read(MIN_BOUND, INFINITY_BOUND)));
    return this.buckets!;
  }

  /** Buckets of BUCKET items over [lower, upper), streamed from the index. */
  private async read(lower: Bound, upper: Bound): Promise<Bucket[]> {
    const out: Bucket[] = [{ lower, acc: new Accumulator() }];
    let prev: Item | undefined;
    for await (const item of this.source.scan(lower, upper)) {
      if (prev && out.at(-1)!.acc.count >= BUCKET) out.push({ lower: minimalBound(prev, item), acc: new Accumulator() });
      out.at(-1)!.acc.add(item.id);
      prev = item;
    }
    return out;
  }

  private async split(i: number): Promise<void> {
    const buckets = this.buckets!;
    const bucket = buckets[i];
    if (!bucket || bucket.acc.count <= SPLIT_AT) return;
    const upper = i + 1 < buckets.length ? buckets[i + 1]!.lower : INFINITY_BOUND;
    this.buckets = [...buckets.slice(0, i), ...(await this.read(bucket.lower, upper)), ...buckets.slice(i + 1)];
  }

  /** Runs `task` with no index write in flight and none starting. */
  private async exclusively(task: () => Promise<void>): Promise<void> {
    while (this.held) await this.held;
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    try {
      if (this.writers > 0) await new Promise<void>((resolve) => (this.idle = resolve));
      this.idle = undefined;
      await task();
    } finally {
      this.held = undefined;
      release();
    }
  }

  /** Index of the bucket holding `b` (the last whose lower bound is at or below it). */
  private bucketOf(buckets: Bucket[], b: Bound): number {
    let lo = 0;
    let hi = buckets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (compareBounds(buckets[mid]!.lower, b) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Index of the first bucket whose lower bound is at or above `b` (buckets.length if none). */
  private ceil(buckets: Bucket[], b: Bound): number {
    const i = this.bucketOf(buckets, b);
    return compareBounds(buckets[i]!.lower, b) >= 0 ? i : i + 1;
  }
}
