import { ErrorCode, ToolDbError } from "../base/errors.js";
import { BaseCrdt, CRDT_LIST } from "./base-crdt.js";
import { canonicalJson, compareStrings } from "./canonical.js";
import { isListChange, type ListChange, type ListInsChange } from "./changes.js";
import { integrateList, type ListItem } from "./list-integrate.js";

/**
 * tool-db's ListCrdt change format (INS with the ids of its left and right
 * neighbours `p`/`n`, DEL of an element id), ordered the YATA way (as Yjs
 * does): an element sits between the neighbours it was inserted between;
 * elements inserted concurrently at the same place are ordered by id
 * (larger first). The
 * value is computed from the set of changes, integrating every element after
 * the neighbours it refers to, so it does not depend on arrival order.
 * 2.6.6 instead sorted by id and inserted at the neighbour's position, which
 * puts an element at the front when its neighbour has a larger id, and
 * throws on a DEL it sees first; for one writer (or writers whose
 * references point to smaller ids) both give the same list.
 */
export class ListCrdt<T = any> extends BaseCrdt<ListChange<T>, T[]> {
  override type = CRDT_LIST;
  private items: ListItem<T>[] = [];

  constructor(author = "", changes?: ListChange<T>[]) {
    super(author, changes);
  }

  /** Inserts `value` so that it ends up at visible position `index` (0 ≤ index ≤ length). */
  INS(value: T, index: number): void {
    const visible = this.visibleItems();
    if (!Number.isInteger(index) || index < 0 || index > visible.length) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `index ${index} out of range 0..${visible.length}`);
    if (index === visible.length) return this.PUSH(value);
    const next = visible[index]!;
    this.addOwn({ t: "INS", p: next.left?.change.i, n: next.change.i, v: value, i: this.nextId() });
  }

  /** Appends after the last visible element. */
  PUSH(value: T): void {
    const visible = this.visibleItems();
    this.addOwn({ t: "INS", p: visible[visible.length - 1]?.change.i, n: undefined, v: value, i: this.nextId() });
  }

  DEL(index: number): void {
    const target = this.visibleItems()[index];
    if (!target) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `no element at index ${index}`);
    this.addOwn({ t: "DEL", v: target.change.i, i: this.nextId() });
  }

  /** Moves the element at `from` to `to` (indexes of the list before the move): a DEL and an INS of its value. */
  MOVE(from: number, to: number): void {
    const visible = this.visibleItems();
    const item = visible[from];
    if (!item || !Number.isInteger(to) || to < 0 || to >= visible.length) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `cannot move ${from} to ${to}`);
    this.DEL(from);
    this.INS(item.change.v, to);
  }

  private nextId(): string {
    let own = 0;
    const prefix = `${this.author}-`;
    for (const c of this.changes.values()) if (c.i.startsWith(prefix)) own++;
    return `${this.author}-${String(own).padStart(8, "0")}`;
  }

  private visibleItems(): ListItem<T>[] {
    void this.value;
    return this.items.filter((item) => !item.deleted);
  }

  protected override accepts(change: unknown): change is ListChange<T> {
    return isListChange(change);
  }

  /** A null neighbour is an absent one (2.6.6 tests them for truthiness). */
  protected override normalize(c: ListChange<T>): ListChange<T> {
    if (c.t === "DEL") return { t: "DEL", v: c.v, i: c.i };
    const out: ListInsChange<T> = { t: "INS", v: c.v, i: c.i };
    if (c.p != null) out.p = c.p;
    if (c.n != null) out.n = c.n;
    return out;
  }

  protected override identity(c: ListChange<T>): string {
    return c.t === "DEL" ? `DEL\n${JSON.stringify(c.i)}\n${JSON.stringify(c.v)}` : `INS\n${JSON.stringify(c.i)}\n${JSON.stringify(c.p ?? null)}\n${JSON.stringify(c.n ?? null)}\n${canonicalJson(c.v)}`;
  }

  protected override compare(a: ListChange<T>, b: ListChange<T>): number {
    return compareStrings(a.i, b.i);
  }

  protected override compute(sorted: ListChange<T>[]): T[] {
    const { start, deletes } = integrateList(sorted);
    this.items = [];
    const value: T[] = [];
    for (let item = start; item; item = item.right) {
      item.deleted = deletes.has(item.change.i);
      this.items.push(item);
      if (!item.deleted) value.push(item.change.v);
    }
    return value;
  }
}

