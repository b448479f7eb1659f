import { randomBytes } from "node:crypto";
import { type Bound, type Item, type ItemSource, compareBounds } from "../../src/node/sync/negentropy-codec.js";

/** A reconciler's item source over an array (what the negentropy tests run over). */
export class ArraySource implements ItemSource {
  private readonly items: Item[];
  constructor(items: Item[]) {
    this.items = [...items].sort(compareBounds);
  }
  async *scan(lower: Bound, upper: Bound): AsyncGenerator<Item> {
    for (const item of this.items) if (compareBounds(item, lower) >= 0 && compareBounds(item, upper) < 0) yield item;
  }
}

/** `n` items of random ids at random times below `maxT`. */
export function randomItems(n: number, maxT: number): Item[] {
  return Array.from({ length: n }, () => ({ t: Math.floor(Math.random() * maxT), id: randomBytes(32).toString("hex") }));
}
