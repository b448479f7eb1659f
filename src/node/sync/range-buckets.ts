/**
 * Where the buckets of the range sums (range-sums.ts) begin. A bucket
 * begins at an *anchor*: an item whose id starts with a zero byte (1 item in
 * 256, as ids are sha256 digests), at the bound {t: its timestamp, id: ""}.
 * The bounds then depend only on the items, not on the order in which a
 * server received them or on when it counted them, so two servers that hold
 * nearly the same set have nearly the same bounds. The initiator of a
 * reconciliation splits ranges at its bucket bounds, and the peer answers the
 * fingerprint of such a range from its cached sums, without reading: with
 * bounds by count, every fingerprint asked for ended inside one of the
 * peer's buckets, and at 0.1 % divergence of 1,000,000 records each side
 * read its whole index once or twice (about 9 s of the run).
 *
 * Not every bound is an anchor's: an anchor that shares its timestamp with
 * the item before it starts no bucket (its bound would fall before that
 * item), and a run of MAX_BUCKET items without an anchor (1 in 3,000 gaps by
 * chance, or ids chosen to avoid anchors) is cut by count. Such bounds are
 * this server's own; the peer then reads the partial bucket to answer, as it
 * did before. Fingerprints stay exact whatever the bounds: only reads change.
 */
import { Accumulator, type Bound, type Item, compareBounds, minimalBound } from "./negentropy-codec.js";

/** Items a bucket holds at most before it is cut by count (anchors give 256 on average). */
export const MAX_BUCKET = 2048;

export interface Bucket {
  /** First bound of the bucket; it ends where the next begins. */
  lower: Bound;
  acc: Accumulator;
  /** The bucket's items in order, while cached; replaced, never changed in place. */
  items?: Item[];
  /** Bumped by every change of the bucket (and when a split or merge replaces it). */
  version: number;
  /**
   * The greatest item added to the bucket, or one above it (removals do not
   * lower it): an anchor added above it starts a new bucket at once, without
   * a read (writes in time order, as a catch-up makes them).
   */
  high?: Item;
}

/** Whether `item` starts a bucket: its id begins with a zero byte. */
export function isAnchor(item: Item): boolean {
  return item.id.charCodeAt(0) === 48 && item.id.charCodeAt(1) === 48; // "00"
}

/** The bound a bucket starting at anchor `item` has: before every item of its timestamp. */
export function anchorBound(item: Item): Bound {
  return { t: item.t, id: "" };
}

/** Whether `bound` is the anchor bound of `item`. */
export function isAnchorBoundOf(bound: Bound, item: Item): boolean {
  return bound.t === item.t && bound.id === "";
}

/** What lets other work in between pages of a long read (Turns, negentropy-bounds.ts). */
export interface Pacer {
  pass(): Promise<void>;
}

/**
 * Buckets over [lower, upper) from its items in order, cut at anchors (and by
 * count past MAX_BUCKET). `turns` is passed after each page: a store whose
 * pages resolve in microtasks (MemoryStore) otherwise read 300,000 items in
 * one turn of the event loop (226-575 ms, review).
 */
export async function readBuckets(pages: AsyncIterable<readonly Item[]>, lower: Bound, turns?: Pacer): Promise<Bucket[]> {
  const out: Bucket[] = [{ lower, acc: new Accumulator(), version: 0 }];
  let current = out[0]!;
  let prev: Item | undefined;
  for await (const page of pages) {
    for (const item of page) {
      if (prev) {
        const bound = isAnchor(item) && item.t !== prev.t ? anchorBound(item) : current.acc.count >= MAX_BUCKET ? minimalBound(prev, item) : undefined;
        if (bound) {
          current = { lower: bound, acc: new Accumulator(), version: 0 };
          out.push(current);
        }
      }
      current.acc.add(item.id);
      current.high = item;
      prev = item;
    }
    await turns?.pass();
  }
  return out;
}

/** Index of the first item of a sorted array at or above `b`. */
export function lowerIndex(items: readonly Item[], b: Bound): number {
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
export function within(items: Item[], lower: Bound, upper: Bound): readonly Item[] {
  const from = lowerIndex(items, lower);
  const to = lowerIndex(items, upper);
  return from === 0 && to === items.length ? items : items.slice(from, to);
}
