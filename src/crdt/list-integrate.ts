import { compareStrings } from "./canonical.js";
import type { ListChange, ListInsChange } from "./changes.js";
import { Sequence, sequenceStats, type SeqNode } from "./list-sequence.js";

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
 * them (see `ListBuilder.integrate`). The list is kept in a `Sequence` that
 * finds the next such element in O(log² n), and a scan that has stepped a
 * while jumps there, so long runs of elements that decide nothing cost a
 * search, not a step each. The order is that of the element-by-element scan.
 * Not every shape is fast: where every few elements decide something (forged
 * alternating siblings), the scan still steps through them.
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
      maxId: p.change.i,
      firstOrigin: undefined,
      firstOriginBelowMin: undefined,
    };
    p.item = item;
    return item;
  });
}

/** Elements a scan steps through one by one before it searches for the next that decides anything (tests set 1). */
export const listTuning = { gallop: 16 };

class ListBuilder<T> {
  start: ListItem<T> | undefined;
  private last: ListItem<T> | undefined;
  private readonly seq = new Sequence();
  /** The children of each origin (null: none) by right origin, in list order. */
  private readonly siblings = new Map<ListItem<T> | null, Map<ListItem<T> | null, ListItem<T>[]>>();

  /**
   * YATA's integration, element by element as Yjs does it, is:
   *   left = origin; for o from origin.right while o !== rightOrigin:
   *     o a child of origin:  larger id: left = o; else same rightOrigin: stop (else go on);
   *     o's origin after the origin: left = o when o's origin is at or before left (else go on);
   *     else stop.
   * It only goes through descendants of the origin. While left is the element just before o
   * ("following"), each of them moves left on but a smaller child; so the scan jumps to the next smaller
   * child, the right origin or the first non-descendant. After a smaller child with another right
   * origin ("conflicting"), left stays until the next larger child, child with the same right origin,
   * deeper element whose origin is at or before left, non-descendant or the right origin; the scan jumps
   * there. It steps first, and jumps only after `listTuning.gallop` steps.
   */
  integrate(item: ListItem<T>): void {
    const seq = this.seq;
    const { origin, rightOrigin } = item;
    const rIndex = rightOrigin ? seq.indexOf(rightOrigin) : Infinity;
    const range = origin ? { lo: origin.tin + 1, hi: origin.tout, childDepth: origin.depth + 1 } : { lo: -Infinity, hi: Infinity, childDepth: 0 };
    const sameSiblings = this.siblingsOf(origin, rightOrigin);
    const passed = new Set<ListItem<T>>(); // conflicting: the elements stepped over (a short cut)
    let left = origin;
    let leftIndex = seq.indexOf(origin);
    let o = origin ? origin.right : this.start;
    let oIndex = leftIndex + 1;
    let following = true;
    let steps = 0;
    let gallop = listTuning.gallop;
    const setLeft = () => {
      left = o;
      leftIndex = oIndex;
      following = true;
    };
    while (o) {
      sequenceStats.visits++;
      if (o === rightOrigin || o.tin < range.lo || o.tin > range.hi) break;
      const child = o.origin === origin;
      if (child && compareStrings(o.id, item.id) > 0) setLeft();
      else if (following && !child) setLeft();
      else if (child && o.rightOrigin === rightOrigin) break;
      else if (child) {
        if (following) passed.clear();
        following = false;
        passed.add(o);
      } else if (!passed.has(o.origin!) && seq.indexOf(o.origin) <= leftIndex) setLeft();
      else passed.add(o);
      o = o.right;
      oIndex++;
      if (++steps < gallop || !o) continue;
      // Many steps: jump to the next element that decides anything (those before it do as the last one did).
      // A jump that skips less than it waited makes the next one wait twice as long, so that where elements
      // decide often the scan costs no more than stepping.
      steps = 0;
      const jumpFrom = oIndex;
      if (following) {
        let stop = seq.findFirst(oIndex, { ...range, below: item.id }) as ListItem<T> | undefined;
        let stopIndex = stop ? seq.indexOf(stop) : Infinity;
        if (rightOrigin && rIndex >= oIndex && rIndex <= stopIndex) {
          stop = rightOrigin;
          stopIndex = rIndex;
        }
        if (!stop) {
          left = this.last;
          break;
        }
        if (stopIndex > oIndex) {
          left = stop.left;
          leftIndex = stopIndex - 1;
        }
        o = stop;
        oIndex = stopIndex;
      } else {
        let next = seq.findFirst(oIndex, { ...range, above: item.id, originUpTo: leftIndex }) as ListItem<T> | undefined;
        let nextIndex = next ? seq.indexOf(next) : Infinity;
        const sibling = this.firstAfter(sameSiblings, oIndex - 1);
        const siblingIndex = sibling ? seq.indexOf(sibling) : Infinity;
        if (siblingIndex < nextIndex) {
          next = sibling;
          nextIndex = siblingIndex;
        }
        if (rightOrigin && rIndex >= oIndex && rIndex <= nextIndex) {
          next = rightOrigin;
          nextIndex = rIndex;
        }
        o = next;
        oIndex = nextIndex;
      }
      if (oIndex - jumpFrom < gallop) gallop *= 2;
    }
    item.left = left;
    item.right = left ? left.right : this.start;
    if (left) left.right = item;
    else this.start = item;
    if (item.right) item.right.left = item;
    else this.last = item;
    seq.insertAfter(left, item.right, item);
    const at = seq.indexOf(item);
    sameSiblings.splice(this.firstIndexAfter(sameSiblings, at), 0, item);
  }

  private siblingsOf(origin: ListItem<T> | undefined, rightOrigin: ListItem<T> | undefined): ListItem<T>[] {
    let byRight = this.siblings.get(origin ?? null);
    if (!byRight) this.siblings.set(origin ?? null, (byRight = new Map()));
    let list = byRight.get(rightOrigin ?? null);
    if (!list) byRight.set(rightOrigin ?? null, (list = []));
    return list;
  }

  /** Where the first of `list` (in list order) at an index above `index` is (list.length if none). */
  private firstIndexAfter(list: ListItem<T>[], index: number): number {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.seq.indexOf(list[mid]) > index) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private firstAfter(list: ListItem<T>[], index: number): ListItem<T> | undefined {
    return list[this.firstIndexAfter(list, index)];
  }
}
