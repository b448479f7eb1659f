/**
 * Cached sums of the reconciliation index by bucket (about 256 items; where
 * buckets begin: range-buckets.ts), so that the fingerprint of a long range
 * costs a scan of at most two partial buckets plus one addition per whole
 * bucket, and a long range is split at bucket bounds without being read. A
 * range whose ends are bucket bounds (as the peer's splits are, since both
 * sides cut at the same anchor items) costs no read at all. A negentropy
 * fingerprint is built from the sum of the ids (mod 2^256) and their count,
 * so adding or removing an item updates its bucket exactly. Memory: one
 * bound, one item and 40 bytes per bucket (about 150 bytes per 256 items).
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
 * applies it to the sums (and to cached items) once the store holds it. An
 * anchor written above everything its bucket holds starts a new bucket there
 * and then; one written inside a bucket, or a bucket grown past MAX_BUCKET,
 * has the bucket read again and cut, under an exclusive hold while writes
 * wait, as building the buckets does. A removed anchor joins its bucket to
 * the one before. A read combines cached
 * whole buckets with scans of the partial ones; each item is counted in
 * exactly one of them. A bucket read from the store is cached only if no
 * write changed it meanwhile (its `version`); writes replace a cached item
 * array rather than change it, so a scan going through one never sees it move.
 */
import { Accumulator, type Bound, INFINITY_BOUND, type Item, MIN_BOUND, type StoreReads, compareBounds } from "./negentropy-codec.js";
import { type Bucket, MAX_BUCKET, type Pacer, anchorBound, isAnchor, isAnchorBoundOf, lowerIndex, readBuckets, within } from "./range-buckets.js";
import { Turns } from "./negentropy-bounds.js";

/** Items kept in cached buckets at most (~120 bytes each: about 8 MiB). */
export const CACHED_ITEMS = 65_536;
/** Uncached buckets read by one iterator at most (then the next run starts). */
const READ_RUN = 64;
/** Uncached buckets read with the one a scan needs (see `scanPages`). */
const READ_AHEAD = 8;

export interface ScanSource {
  /** The items in [lower, upper) in order, a page at a time (pages may be empty). */
  scanPages(lower: Bound, upper: Bound): AsyncIterable<readonly Item[]>;
}

export class RangeSums {
  private buckets: Bucket[] | undefined;
  private writers = 0;
  private idle: (() => void) | undefined;
  private held: Promise<void> | undefined;
  /** The cuts of `toSplit` under way. */
  private cutting: Promise<void> | undefined;
  /** Buckets to read again and cut (an anchor written inside, or grown past MAX_BUCKET), in order of asking. */
  private readonly toSplit = new Set<Bucket>();
  /** Buckets whose items are cached, least recently used first. */
  private readonly cached = new Set<Bucket>();
  private cachedItems = 0;

  constructor(
    private readonly source: ScanSource,
    /**
     * Paces each read of the store (building the buckets, a run of uncached
     * buckets, a cut): it lets other work in every TURN_MS, whether or not
     * the store's pages wait for I/O (a MemoryStore's resolve in microtasks).
     * Tests count turns with a clock of their own.
     */
    private readonly pacer: () => Pacer = () => new Turns(),
  ) {}

  /** Runs one index write; its item changes (removals first) reach the sums once it succeeded. */
  async write<T>(task: () => Promise<T>, added?: Item | readonly Item[], removed?: Item | readonly Item[]): Promise<T> {
    while (this.held) await this.held;
    this.writers++;
    try {
      const result = await task();
      if (this.buckets) {
        for (const item of itemList(removed)) this.remove(item);
        for (const item of itemList(added)) this.add(item);
      }
      return result;
    } finally {
      if (--this.writers === 0) this.idle?.();
    }
  }

  private remove(item: Item): void {
    const buckets = this.buckets!;
    const i = this.bucketOf(buckets, item);
    const bucket = buckets[i]!;
    bucket.acc.remove(item.id);
    this.changeItems(bucket, item, false);
    // Its anchor is gone: the bucket joins the one before, as on a server that never held the anchor.
    if (i > 0 && isAnchor(item) && isAnchorBoundOf(bucket.lower, item)) this.merge(i);
  }

  private add(item: Item): void {
    const buckets = this.buckets!;
    const i = this.bucketOf(buckets, item);
    const bucket = buckets[i]!;
    const startsBucket = isAnchor(item) && compareBounds(bucket.lower, anchorBound(item)) < 0;
    if (startsBucket && (!bucket.high || bucket.high.t < item.t)) return this.startAt(i, item);
    bucket.acc.add(item.id);
    this.changeItems(bucket, item, true);
    if (!bucket.high || compareBounds(item, bucket.high) > 0) bucket.high = item;
    if (startsBucket || bucket.acc.count > MAX_BUCKET) this.resplit(bucket);
  }

  /** Anchor `item` lies above every item of bucket i: a new bucket begins at it, nothing read. */
  private startAt(i: number, item: Item): void {
    const buckets = this.buckets!;
    const acc = new Accumulator();
    acc.add(item.id);
    // A read of bucket i that overlapped the write may show the item: its items must not keep it.
    this.changeItems(buckets[i]!, item, false);
    const next: Bucket = { lower: anchorBound(item), acc, version: 0, high: item };
    // After the last bucket (a catch-up's every anchor), in place: a copy of the array an anchor
    // left a few thousand of them to the old generation (+25-40 MiB of peak RSS at 1,000,000).
    // Readers go by index, and a push moves none.
    if (i === buckets.length - 1) buckets.push(next);
    else this.buckets = [...buckets.slice(0, i + 1), next, ...buckets.slice(i + 1)];
  }

  /** Joins bucket i to bucket i - 1. */
  private merge(i: number): void {
    const buckets = this.buckets!;
    const [before, bucket] = [buckets[i - 1]!, buckets[i]!];
    const acc = new Accumulator();
    acc.merge(before.acc);
    acc.merge(bucket.acc);
    const joined: Bucket = { lower: before.lower, acc, version: 0, high: bucket.high ?? before.high };
    const items = before.items && bucket.items ? [...before.items, ...bucket.items] : undefined;
    for (const old of [before, bucket]) {
      old.version++; // a read of it still going must not cache it
      this.uncache(old);
    }
    this.buckets = [...buckets.slice(0, i - 1), joined, ...buckets.slice(i + 1)];
    if (items) this.cache(joined, items);
    if (acc.count > MAX_BUCKET) this.resplit(joined);
  }

  /** Reads `bucket` again and cuts it, after the cuts asked for before (one at a time). */
  private resplit(bucket?: Bucket): void {
    if (bucket) this.toSplit.add(bucket);
    if (this.cutting || this.toSplit.size === 0) return;
    // A cut that fails (its store closing under it) leaves the bucket whole; sums stay exact.
    this.cutting = this.splitQueued()
      .catch(() => this.toSplit.clear())
      .finally(() => {
        this.cutting = undefined;
        this.resplit(); // asked for while the last one ended
      });
  }

  /** Resolves once no bucket waits to be read again and cut. */
  async cutsDone(): Promise<void> {
    while (this.cutting) await this.cutting;
  }

  private async splitQueued(): Promise<void> {
    for (const bucket of this.toSplit) {
      this.toSplit.delete(bucket);
      await this.exclusively(() => this.split(bucket));
    }
  }

  /** Adds the items of [lower, upper) to `acc`; returns the index entries read (and counts in `reads` those read besides). */
  async sum(lower: Bound, upper: Bound, acc: Accumulator, reads?: StoreReads): Promise<number> {
    const buckets = await this.built();
    let m = this.ceil(buckets, lower);
    const first = m;
    const whole = new Accumulator();
    const ends = (k: number) => (k + 1 < buckets.length ? compareBounds(buckets[k + 1]!.lower, upper) <= 0 : upper.t === Infinity);
    for (; m < buckets.length && ends(m); m++) whole.merge(buckets[m]!.acc);
    if (m === first) return this.scanInto(lower, upper, acc, reads);
    let read = await this.scanInto(lower, buckets[first]!.lower, acc, reads);
    acc.merge(whole);
    if (m < buckets.length) read += await this.scanInto(buckets[m]!.lower, upper, acc, reads);
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

  /**
   * Bucket bounds strictly inside (lower, upper) cutting it into `parts`
   * pieces of whole buckets (into one piece a bucket when it spans fewer), or
   * undefined when no bound lies inside.
   */
  async splitPoints(lower: Bound, upper: Bound, parts: number): Promise<Bound[] | undefined> {
    const buckets = await this.built();
    const inside: Bound[] = [];
    for (let m = this.ceil(buckets, lower); m < buckets.length && compareBounds(buckets[m]!.lower, upper) < 0; m++) {
      if (compareBounds(buckets[m]!.lower, lower) > 0) inside.push(buckets[m]!.lower);
    }
    if (inside.length === 0) return undefined;
    if (inside.length < parts) return inside;
    return Array.from({ length: parts - 1 }, (_, k) => inside[Math.floor(((k + 1) * inside.length) / parts)]!);
  }

  private async scanInto(lower: Bound, upper: Bound, acc: Accumulator, reads?: StoreReads): Promise<number> {
    let n = 0;
    for await (const page of this.scanPages(lower, upper, reads)) {
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
   * afterwards (cached item arrays are replaced, not changed). Items read
   * from the store outside the range are counted in `reads`.
   */
  async *scanPages(lower: Bound, upper: Bound, reads?: StoreReads): AsyncGenerator<readonly Item[]> {
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
      yield* this.readRun(buckets, i, j, lower, upper, reads);
      i = j;
    }
  }

  /** Reads buckets [i, j) whole with one iterator, caching each that no write changed meanwhile; yields the items in [lower, upper). */
  private async *readRun(buckets: Bucket[], i: number, j: number, lower: Bound, upper: Bound, reads?: StoreReads): AsyncGenerator<readonly Item[]> {
    const versions = buckets.slice(i, j).map((b) => b.version);
    const end = (k: number) => (k + 1 < buckets.length ? buckets[k + 1]!.lower : INFINITY_BOUND);
    let k = i;
    let items: Item[] = [];
    const turns = this.pacer();
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
      if (reads) reads.extra += page.length - out.length;
      if (out.length > 0) yield out;
      await turns.pass();
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
    if (!this.buckets) await this.exclusively(async () => void (this.buckets ??= await readBuckets(this.source.scanPages(MIN_BOUND, INFINITY_BOUND), MIN_BOUND, this.pacer())));
    return this.buckets!;
  }

  private async split(bucket: Bucket): Promise<void> {
    const buckets = this.buckets!;
    const i = buckets.indexOf(bucket);
    if (i === -1) return; // joined or cut meanwhile
    const upper = i + 1 < buckets.length ? buckets[i + 1]!.lower : INFINITY_BOUND;
    const parts = await readBuckets(this.source.scanPages(bucket.lower, upper), bucket.lower, this.pacer());
    if (parts.length === 1) {
      bucket.high = parts[0]!.high; // removals may have left it high
      return;
    }
    this.buckets = [...buckets.slice(0, i), ...parts, ...buckets.slice(i + 1)];
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

function itemList(items: Item | readonly Item[] | undefined): readonly Item[] {
  return items === undefined ? [] : Array.isArray(items) ? items : [items as Item];
}
