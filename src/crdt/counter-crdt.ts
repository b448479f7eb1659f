import { BaseCrdt, CRDT_COUNTER } from "./base-crdt.js";
import { isCounterChange, type CounterChange } from "./changes.js";
import { canonicalJson } from "./canonical.js";

/**
 * tool-db's CounterCrdt: the sum of every author's ADD and SUB changes.
 * Its type is "COUNTER" (2.6.6 labels its counters "LIST" by mistake; we
 * accept those records too).
 */
export class CounterCrdt extends BaseCrdt<CounterChange, number> {
  override type = CRDT_COUNTER;

  constructor(author = "", changes?: CounterChange[]) {
    super(author, changes);
  }

  ADD(value: number): void {
    this.addOwn({ t: "ADD", v: value, a: this.author, i: this.ownCount() });
  }

  SUB(value: number): void {
    this.addOwn({ t: "SUB", v: value, a: this.author, i: this.ownCount() });
  }

  private ownCount(): number {
    let n = 0;
    for (const c of this.changes.values()) if (c.a === this.author) n++;
    return n;
  }

  protected override accepts(change: unknown): change is CounterChange {
    return isCounterChange(change);
  }

  protected override normalize(c: CounterChange): CounterChange {
    return { t: c.t, v: c.v, a: c.a, i: c.i };
  }

  protected override identity(c: CounterChange): string {
    return `${c.t}\n${JSON.stringify(c.a)}\n${c.i}\n${canonicalJson(c.v)}`;
  }

  protected override compute(sorted: CounterChange[]): number {
    let sum = 0;
    for (const c of sorted) sum += c.t === "ADD" ? c.v : -c.v;
    return sum;
  }
}
