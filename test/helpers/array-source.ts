import { randomBytes } from "node:crypto";
import { type Bound, type Item, type ItemSource, compareBounds } from "../../src/node/sync/negentropy-codec.js";

/** Items a page of `scanPages` holds at most. */
const PAGE = 256;

/** A reconciler's item source over an array (what the negentropy tests run over). */
export class ArraySource implements ItemSource {
  private readonly items: Item[];
  constructor(items: Item[]) {
    this.items = [...items].sort(compareBounds);
  }
  /** The items in [lower, upper), in order. */
  async *scan(lower: Bound, upper: Bound): AsyncGenerator<Item> {
    for await (const page of this.scanPages(lower, upper)) yield* page;
  }

  /**
   * The same a page at a time, as the sync index reads (one promise a page, not
   * one an item), from a binary search to the first: a pass over every item
   * for each range made a reconciliation quadratic.
   */
  async *scanPages(lower: Bound, upper: Bound): AsyncGenerator<readonly Item[]> {
    let [lo, hi] = [0, this.items.length];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBounds(this.items[mid]!, lower) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.items.length && compareBounds(this.items[i]!, upper) < 0; ) {
      const page: Item[] = [];
      for (; page.length < PAGE && i < this.items.length && compareBounds(this.items[i]!, upper) < 0; i++) page.push(this.items[i]!);
      yield page;
    }
  }
}

/** `n` items of random ids at random times below `maxT`. */
export function randomItems(n: number, maxT: number): Item[] {
  return Array.from({ length: n }, () => ({ t: Math.floor(Math.random() * maxT), id: randomBytes(32).toString("hex") }));
}
