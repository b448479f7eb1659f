import { compareStrings } from "./canonical.js";
import type { ListChange, ListInsChange } from "./changes.js";
import { Sequence, sequenceStats, type SeqNode, type SeqQuery } from "./list-sequence.js";

/** A list element: its INS, its neighbours in the list, and its origins as integrated. */
export interface ListItem<T> extends SeqNode {
  change: ListInsChange<T>;
  left: ListItem<T> | undefined;
  right: ListItem<T> | undefined;
  origin: ListItem<T> | undefined;
  rightOrigin: ListItem<T> | undefined;
  deleted: boolean;
}

interface Pending<T> {
  change: ListInsChange<T>;
  origin: Pending<T> | undefined;
  rightOrigin: Pending<T> | undefined;
  children: Pending<T>[];
  item: ListItem<T> | undefined;
}

/**
 * The list of a set of changes, given in id order: every element integrated
 * after the neighbours it names (iterative depth-first, ids ascending; a
 * reference cycle, possible only in forged lists, is broken by treating the
 * neighbour as absent), the YATA way (as Yjs does), larger ids left.
 *
 * The scan of an integration visits, from its origin on, only descendants of
 * the origin (in the tree of origins), and where it goes is decided by few of
 * them: the origin's children with smaller ids, the right origin, the first
 * non-descendant, and, after passing a smaller child, elements whose origin
 * lies before the scan's current left. The list is kept in a `Sequence` that
 * finds the next such element in O(log n), so a list of n changes costs
 * O(n log n) whatever its shape, with the order of the element-by-element scan.
 */
export function integrateList<T>(sorted: ListChange<T>[]): { start: ListItem<T> | undefined; deletes: Set<string> } {
  const byId = new Map<string, Pending<T>>();
  const deletes = new Set<string>();
  for (const c of sorted) {
    if (c.t === "DEL") deletes.add(c.v);
    else if (!byId.has(c.i)) byId.set(c.i, { change: c, origin: undefined, rightOrigin: undefined, children: [], item: undefined });
  }
  const order = integrationOrder(byId);
  const items = buildTree(order);
  const list = new ListBuilder<T>();
  for (const item of items) list.integrate(item);
  return { start: list.start, deletes };
}

/** The order of integration and each element's origins as they stand then (undefined: absent or not integrated yet). */
function integrationOrder<T>(byId: Map<string, Pending<T>>): Pending<T>[] {
  const integrated = new Set<Pending<T>>();
  const visiting = new Set<Pending<T>>();
  const order: Pending<T>[] = [];
  const ref = (id: string | undefined) => (id == null ? undefined : byId.get(id));
  for (const root of byId.values()) {
    const stack: Pending<T>[] = [root];
    while (stack.length > 0) {
      const p = stack[stack.length - 1]!;
      if (integrated.has(p)) {
        stack.pop();
        continue;
      }
      visiting.add(p);
      const dep = [ref(p.change.p), ref(p.change.n)].find((d) => d !== undefined && !integrated.has(d) && !visiting.has(d));
      if (dep) {
        stack.push(dep);
        continue;
      }
      stack.pop();
      visiting.delete(p);
      const origin = ref(p.change.p);
      const rightOrigin = ref(p.change.n);
      p.origin = origin && integrated.has(origin) ? origin : undefined;
      p.rightOrigin = rightOrigin && integrated.has(rightOrigin) ? rightOrigin : undefined;
      p.origin?.children.push(p);
      integrated.add(p);
      order.push(p);
    }
  }
  return order;
}

/** Items in integration order, with their place in the tree of origins (Euler tour, iterative). */
function buildTree<T>(order: Pending<T>[]): ListItem<T>[] {
  let clock = 0;
  const stack: { p: Pending<T>; depth: number; next: number; tin: number }[] = [];
  const place = new Map<Pending<T>, { tin: number; tout: number; depth: number }>();
  for (const root of order) {
    if (root.origin) continue;
    stack.push({ p: root, depth: 0, next: 0, tin: clock++ });
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const child = top.p.children[top.next++];
      if (child) stack.push({ p: child, depth: top.depth + 1, next: 0, tin: clock++ });
      else {
        stack.pop();
        place.set(top.p, { tin: top.tin, tout: clock - 1, depth: top.depth });
      }
    }
  }
  return order.map((p) => {
    const { tin, tout, depth } = place.get(p)!;
    const item: ListItem<T> = {
      change: p.change,
      id: p.change.i,
      tin,
      tout,
      depth,
      left: undefined,
      right: undefined,
      origin: p.origin?.item,
      rightOrigin: p.rightOrigin?.item,
      deleted: false,
      l: undefined,
      r: undefined,
      up: undefined,
      prio: 0,
      size: 1,
      minTin: tin,
      maxTin: tin,
      minDepth: depth,
      minId: p.change.i,
    };
    p.item = item;
    return item;
  });
}

class ListBuilder<T> {
  start: ListItem<T> | undefined;
  private last: ListItem<T> | undefined;
  private readonly seq = new Sequence();

  /**
   * YATA's integration, element by element as Yjs does it, is:
   *   left = origin; for o from origin.right while o !== rightOrigin:
   *     o a child of origin:  larger id: left = o; else same rightOrigin: stop (else go on);
   *     o's origin after the origin: left = o when o's origin is at or before left (else go on);
   *     else stop.
   * While left is the element just before o ("following"), every descendant of the origin moves left on
   * but a smaller child; so the scan jumps to the next smaller child, the right origin or the first
   * non-descendant. After a smaller child ("conflicting"), the descendants of an element passed over
   * are passed over too, so it jumps past them.
   */
  integrate(item: ListItem<T>): void {
    const seq = this.seq;
    const origin = item.origin;
    const rIndex = item.rightOrigin ? seq.indexOf(item.rightOrigin) : Infinity;
    const originIndex = seq.indexOf(origin);
    const inOrigin: SeqQuery = origin
      ? { lo: origin.tin + 1, hi: origin.tout, childDepth: origin.depth + 1, below: item.id }
      : { lo: -Infinity, hi: Infinity, childDepth: 0, below: item.id };
    const isChild = (o: ListItem<T>) => o.origin === origin;
    const inRange = (o: ListItem<T>) => o.tin >= inOrigin.lo && o.tin <= inOrigin.hi;
    let left = origin;
    let o = origin ? origin.right : this.start;
    let oIndex = originIndex + 1;
    let leftIndex = originIndex; // conflicting: where left stands
    let following = true;
    while (o) {
      sequenceStats.visits++;
      if (following) {
        // left = o for every element up to the next event (left is then the one before it).
        const event = seq.findFirst(oIndex, inOrigin) as ListItem<T> | undefined;
        const eventIndex = event ? seq.indexOf(event) : Infinity;
        const stopIndex = Math.min(eventIndex, rIndex >= oIndex ? rIndex : Infinity);
        if (stopIndex === Infinity) {
          left = this.last;
          break;
        }
        const stopAt = stopIndex === rIndex ? item.rightOrigin! : event!;
        if (stopIndex > oIndex) left = stopAt.left;
        if (stopAt === item.rightOrigin || !inRange(stopAt) || stopAt.rightOrigin === item.rightOrigin) break;
        // A smaller child with another right origin: pass over it and its descendants.
        following = false;
        leftIndex = stopIndex - 1;
        o = stopAt;
        oIndex = stopIndex;
      } else if (o === item.rightOrigin || !inRange(o)) {
        break;
      } else if (isChild(o) ? compareStrings(o.id, item.id) > 0 : seq.indexOf(o.origin) <= leftIndex) {
        left = o;
        following = true;
        o = o.right;
        oIndex++;
        continue;
      } else if (isChild(o) && o.rightOrigin === item.rightOrigin) {
        break;
      }
      // Passed over (conflicting): so are its descendants (a search only when one follows it).
      const next: ListItem<T> | undefined = o.right;
      if (!next || next.tin < o.tin || next.tin > o.tout) {
        o = next;
        oIndex++;
        continue;
      }
      const past = seq.findFirst(oIndex + 1, { lo: o.tin, hi: o.tout, childDepth: -1, below: "" }) as ListItem<T> | undefined;
      const pastIndex = past ? seq.indexOf(past) : Infinity;
      if (rIndex > oIndex && rIndex <= pastIndex) break; // the right origin comes first
      o = past;
      oIndex = pastIndex;
    }
    item.left = left;
    item.right = left ? left.right : this.start;
    if (left) left.right = item;
    else this.start = item;
    if (item.right) item.right.left = item;
    else this.last = item;
    seq.insertAfter(left, item.right, item);
  }
}
