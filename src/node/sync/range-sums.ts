/**
 * Cached sums of the reconciliation index by bucket of about BUCKET items,
 * so that the fingerprint of a long range costs a scan of at most two
 * partial buckets plus one addition per whole bucket, and a long range is
 * split at bucket bounds without being read. A negentropy fingerprint is
 * built from the sum of the ids (mod 2^256) and their count, so adding or
 * removing an item updates its bucket exactly. Memory: one bound and 40
 * bytes per bucket (about 100 bytes per 256 items: 400 KiB per million).
 *
 * Recently read buckets also keep their items (at most CACHED_ITEMS in all,
 * least recently used dropped first), and every scan goes through them: a
 * reconciliation round reads thousands of short ranges next to each other,
 * each fingerprint reads the partial buckets at its two ends, and a LevelDB
 * iterator per read (two thread-pool jobs, queued behind a catch-up's
 * signature checks) made range reconciliation at 1,000,000 records take
 * minutes. Uncached buckets a scan reaches are read together by one iterator.
 *
 * Consistency: every write to the index runs under `write` (shared), which
 * applies it to the sums (and to cached items) once the store holds it;
 * building the buckets and splitting one that grew past SPLIT_AT read the
 * store under an exclusive hold, while writes wait. A read combines cached
 * whole buckets with scans of the partial ones; each item is counted in
 * exactly one of them. A bucket read from the store is cached only if no
 * write changed it meanwhile (its `version`); writes replace a cached item
 * array rather than change it, so a scan going through one never sees it move.
 */
import { Accumulator, type Bound, INFINITY_BOUND, type Item, MIN_BOUND, compareBounds, minimalBound } from "./negentropy-codec.js";

const BUCKET = 256;
const SPLIT_AT = 4 * BUCKET;
/** Items kept in cached buckets at most (~120 bytes each: about 8 MiB). */
const CACHED_ITEMS = 65_536;
/** Uncached buckets read by one iterator at most (then the next run starts). */
const READ_RUN = 64;
/** Uncached buckets read with the one a scan needs (see `scanPages`). */
const READ_AHEAD = 8;

interface Bucket {
  /** First bound of the bucket; it ends where the next begins. */
  lower: Bound;
  acc: Accumulator;
  /** The bucket's items in order, while cached; replaced, never changed in place. */
  items?: Item[];
  /** Bumped by every change of the bucket (and when a split replaces it). */
  version: number;
}

export interface ScanSource {
  /** The items in [lower, upper) in order, a page at a time (pages may be empty). */
  scanPages(lower: Bound, upper: Bound): AsyncIterable<readonly Item[]>;
}

export class RangeSums {
  private buckets: Bucket[] | undefined;
  private writers = 0;
  private idle: (() => void) | undefined;
  private held: Promise<void> | undefined;
  private splitting = false;
  /** Buckets whose items are cached, least recently used first. */
  private readonly cached = new Set<Bucket>();
  private cachedItems = 0;

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
    if (removed) {
      const bucket = buckets[this.bucketOf(buckets, removed)]!;
      bucket.acc.remove(removed.id);
      this.changeItems(bucket, removed, false);
    }
    if (!added) return;
    const i = this.bucketOf(buckets, added);
    const acc = buckets[i]!.acc;
    acc.add(added.id);
    this.changeItems(buckets[i]!, added, true);
    if (acc.count > SPLIT_AT && !this.splitting) {
      this.splitting = true;
      // A split that fails (its store closing under it) leaves the bucket whole; a later write retries.
      void this.exclusively(() => this.split(i))
        .catch(() => undefined)
        .finally(() => (this.splitting = false));
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

  /**
   * `sum` without waiting, when the buckets are built and the partial
   * buckets at both ends are cached (most ranges of a round: they lie next
   * to each other); undefined, and `acc` untouched, otherwise.
   */
  sumCached(lower: Bound, upper: Bound, acc: Accumulator): number | undefined {
    const buckets = this.buckets;
    if (!buckets) return undefined;
    let m = this.ceil(buckets, lower);
    const first = m;
    const whole = new Accumulator();
    const ends = (k: number) => (k + 1 < buckets.length ? compareBounds(buckets[k + 1]!.lower, upper) <= 0 : upper.t === Infinity);
    for (; m < buckets.length && ends(m); m++) whole.merge(buckets[m]!.acc);
    const head = this.cachedPages(lower, m === first ? upper : buckets[first]!.lower);
    const tail = m === first || m >= buckets.length ? [] : this.cachedPages(buckets[m]!.lower, upper);
    if (!head || !tail) return undefined;
    let read = 0;
    for (const page of [...head, ...tail]) {
      for (const item of page) acc.add(item.id);
      read += page.length;
    }
    acc.merge(whole);
    return read + (m - first);
  }

  /** The items in [lower, upper) in pages, when every bucket they lie in is cached; else undefined. */
  cachedPages(lower: Bound, upper: Bound): (readonly Item[])[] | undefined {
    const buckets = this.buckets;
    if (!buckets) return undefined;
    const pages: (readonly Item[])[] = [];
    if (compareBounds(lower, upper) >= 0) return pages;
    for (let i = this.bucketOf(buckets, lower); i < buckets.length && compareBounds(buckets[i]!.lower, upper) < 0; i++) {
      const items = buckets[i]!.items;
      if (!items) return undefined;
      this.touch(buckets[i]!);
      const page = within(items, lower, upper);
      if (page.length > 0) pages.push(page);
    }
    return pages;
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
    for await (const page of this.scanPages(lower, upper)) {
      for (const item of page) acc.add(item.id);
      n += page.length;
    }
    return n;
  }

  /** The items in [lower, upper), in order. */
  async *scan(lower: Bound, upper: Bound): AsyncGenerator<Item> {
    for await (const page of this.scanPages(lower, upper)) yield* page;
  }

  /**
   * The items in [lower, upper), in order, in non-empty pages: from cached
   * buckets, reading the others (and caching them). A page is never changed
   * afterwards (cached item arrays are replaced, not changed).
   */
  async *scanPages(lower: Bound, upper: Bound): AsyncGenerator<readonly Item[]> {
    if (compareBounds(lower, upper) >= 0) return;
    const buckets = await this.built();
    const reaches = (k: number) => k < buckets.length && compareBounds(buckets[k]!.lower, upper) < 0;
    for (let i = this.bucketOf(buckets, lower); reaches(i); ) {
      const bucket = buckets[i]!;
      if (bucket.items) {
        this.touch(bucket);
        const page = within(bucket.items, lower, upper);
        if (page.length > 0) yield page;
        i++;
        continue;
      }
      // Past the range too, a few buckets: a round's next ranges lie right after this one, and
      // one iterator for them costs less than one each (a pool job that waits behind the checks).
      let j = i + 1;
      while (j - i < READ_RUN && j < buckets.length && !buckets[j]!.items && (reaches(j) || j - i < READ_AHEAD)) j++;
      yield* this.readRun(buckets, i, j, lower, upper);
      i = j;
    }
  }

  /** Reads buckets [i, j) whole with one iterator, caching each that no write changed meanwhile; yields the items in [lower, upper). */
  private async *readRun(buckets: Bucket[], i: number, j: number, lower: Bound, upper: Bound): AsyncGenerator<readonly Item[]> {
    const versions = buckets.slice(i, j).map((b) => b.version);
    const end = (k: number) => (k + 1 < buckets.length ? buckets[k + 1]!.lower : INFINITY_BOUND);
    let k = i;
    let items: Item[] = [];
    const finish = () => {
      const bucket = buckets[k]!;
      if (bucket.version === versions[k - i] && !bucket.items) this.cache(bucket, items);
      items = [];
      k++;
    };
    for await (const page of this.source.scanPages(buckets[i]!.lower, end(j - 1))) {
      const out: Item[] = [];
      for (const item of page) {
        while (k < j - 1 && compareBounds(item, buckets[k + 1]!.lower) >= 0) finish();
        items.push(item);
        if (compareBounds(item, lower) >= 0 && compareBounds(item, upper) < 0) out.push(item);
      }
      if (out.length > 0) yield out;
    }
    while (k < j) finish();
  }

  private cache(bucket: Bucket, items: Item[]): void {
    bucket.items = items;
    this.cachedItems += items.length;
    this.cached.add(bucket);
    for (const oldest of this.cached) {
      if (this.cachedItems <= CACHED_ITEMS) break;
      this.uncache(oldest);
    }
  }

  private uncache(bucket: Bucket): void {
    if (!bucket.items) return;
    this.cachedItems -= bucket.items.length;
    bucket.items = undefined;
    this.cached.delete(bucket);
  }

  private touch(bucket: Bucket): void {
    this.cached.delete(bucket);
    this.cached.add(bucket);
  }

  /** A write reached the store: the bucket's version moves on, and its cached items (if any) get a new array with the change. */
  private changeItems(bucket: Bucket, item: Item, added: boolean): void {
    bucket.version++;
    const items = bucket.items;
    if (!items) return;
    const at = lowerIndex(items, item);
    const present = at < items.length && compareBounds(items[at]!, item) === 0;
    // A read that overlapped the write may already show it.
    if (present === added) return;
    bucket.items = added ? [...items.slice(0, at), item, ...items.slice(at)] : [...items.slice(0, at), ...items.slice(at + 1)];
    this.cachedItems += added ? 1 : -1;
  }

  private async built(): Promise<Bucket[]> {
    if (!this.buckets) await this.exclusively(async () => void (this.buckets ??= await this.read(MIN_BOUND, INFINITY_BOUND)));
    return this.buckets!;
  }

  /** Buckets of BUCKET items over [lower, upper), streamed from the index. */
  private async read(lower: Bound, upper: Bound): Promise<Bucket[]> {
    const out: Bucket[] = [{ lower, acc: new Accumulator(), version: 0 }];
    let prev: Item | undefined;
    for await (const page of this.source.scanPages(lower, upper)) {
      for (const item of page) {
        if (prev && out.at(-1)!.acc.count >= BUCKET) out.push({ lower: minimalBound(prev, item), acc: new Accumulator(), version: 0 });
        out.at(-1)!.acc.add(item.id);
        prev = item;
      }
    }
    return out;
  }

  private async split(i: number): Promise<void> {
    const buckets = this.buckets!;
    const bucket = buckets[i];
    if (!bucket || bucket.acc.count <= SPLIT_AT) return;
    const upper = i + 1 < buckets.length ? buckets[i + 1]!.lower : INFINITY_BOUND;
    this.buckets = [...buckets.slice(0, i), ...(await this.read(bucket.lower, upper)), ...buckets.slice(i + 1)];
    bucket.version++; // a scan still reading it must not cache it
    this.uncache(bucket);
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

/** Index of the first item at or above `b`. */
function lowerIndex(items: Item[], b: Bound): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareBounds(items[mid]!, b) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The items of a sorted array in [lower, upper): the array itself when all are. */
function within(items: Item[], lower: Bound, upper: Bound): readonly Item[] {
  const from = lowerIndex(items, lower);
  const to = lowerIndex(items, upper);
  return from === 0 && to === items.length ? items : items.slice(from, to);
}
