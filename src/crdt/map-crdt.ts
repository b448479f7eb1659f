import { BaseCrdt, CRDT_MAP } from "./base-crdt.js";
import { canonicalJson, compareStrings, setOwn } from "./canonical.js";
import { isMapChange, type MapChange } from "./changes.js";

/**
 * tool-db's MapCrdt: per key, the change with the highest index wins; at
 * the same index a DEL beats a SET, then the larger author, then the larger
 * change identity (2.6.6 left that last tie to arrival order).
 */
export class MapCrdt<T = any> extends BaseCrdt<MapChange<T>, Record<string, T>> {
  override type = CRDT_MAP;

  constructor(author = "", changes?: MapChange<T>[]) {
    super(author, changes);
  }

  SET(key: string, value: T): void {
    this.addOwn({ t: "SET", k: key, a: this.author, v: value, i: this.nextIndex(key) });
  }

  DEL(key: string): void {
    this.addOwn({ t: "DEL", k: key, a: this.author, i: this.nextIndex(key) });
  }

  private nextIndex(key: string): number {
    let max = 0;
    for (const c of this.changes.values()) if (c.k === key && c.i > max) max = c.i;
    return max + 1;
  }

  protected override accepts(change: unknown): change is MapChange<T> {
    return isMapChange(change);
  }

  protected override normalize(c: MapChange<T>): MapChange<T> {
    return c.t === "SET" ? { t: "SET", k: c.k, a: c.a, v: c.v, i: c.i } : { t: "DEL", k: c.k, a: c.a, i: c.i };
  }

  /** Field by field (JSON-quoted strings cannot contain a raw newline): cheaper than canonical JSON of the whole change. */
  protected override identity(c: MapChange<T>): string {
    return `${c.t}\n${JSON.stringify(c.k)}\n${JSON.stringify(c.a)}\n${c.i}\n${c.t === "SET" ? canonicalJson(c.v) : ""}`;
  }

  protected override compare(a: MapChange<T>, b: MapChange<T>): number {
    if (a.i !== b.i) return a.i - b.i;
    if (a.t !== b.t) return a.t === "SET" ? -1 : 1;
    return compareStrings(a.a, b.a);
  }

  protected override compute(sorted: MapChange<T>[]): Record<string, T> {
    const value: Record<string, T> = {};
    for (const c of sorted) {
      if (c.t === "SET") setOwn(value, c.k, c.v);
      else delete value[c.k];
    }
    return value;
  }
}
