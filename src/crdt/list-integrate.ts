import { compareStrings } from "./canonical.js";
import type { ListChange, ListInsChange } from "./changes.js";
import { Sequence, sequenceStats, type SeqNode } from "./list-sequence.js";
import { SiblingGroup } from "./list-siblings.js";

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
 * the origin (in the tree of origins). Where it ends and where it leaves the
 * element are found by a few searches of a `Sequence` (see
 * `ListBuilder.integrate`), O(log² n) each, so no shape of forged list makes
 * an integration cost more than that: the order is that of the
 * element-by-element scan, which is taken only while it is short.
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
      maxId: p.change.i,
      firstOrigin: undefined,
      firstOriginBelowMin: undefined,
      freeAll: undefined,
      freeBelowMin: undefined,
    };
    p.item = item;
    return item;
  });
}

/** Elements a scan steps through one by one before it gives up and searches (tests set 0: search always). */
export const listTuning = { steps: 16 };

class ListBuilder<T> {
  start: ListItem<T> | undefined;
  private readonly seq = new Sequence();
  private readonly passed = new Set<ListItem<T>>();
  /** The children of each origin (null: none) by right origin, in list order. */
  private readonly siblings = new Map<ListItem<T> | null, Map<ListItem<T> | null, SiblingGroup>>();

  /**
   * YATA's integration, element by element as Yjs does it, is (larger ids left):
   *   left = origin; for o from origin.right while o !== rightOrigin:
   *     o a child of origin:  larger id: left = o; else same rightOrigin: stop (else go on);
   *     o's origin after the origin: left = o when o's origin is at or before left (else go on);
   *     else stop.
   * (An element comes after its origin, so "at or before left" holds for every o right after left.)
   * Where it stops, S, does not depend on left: the right origin, the first element that is not a
   * descendant of the origin, or the first smaller child with the same right origin, whichever is first.
   * Where left ends, F: at the origin if no larger child comes before S; else at the first p, from the last
   * larger child g on, such that no deeper element between p and S has its origin at or before p. For every
   * element after that p leaves left where it is (a smaller child, or one whose origin came after the last
   * left), and no q before it can be the last left: the first element after q to move left would have its
   * origin at or before the last left, which is at or before q.
   * S (three searches), g and F are each found in O(log² n) (`Sequence.lastAbove`, `firstFree`); the scan
   * itself is used while it ends within `listTuning.steps` elements.
   */
  integrate(item: ListItem<T>): void {
    const group = this.siblingsOf(item.origin, item.rightOrigin);
    const scanned = this.scan(item);
    const left = scanned ? scanned.left : this.search(item, group);
    item.left = left;
    item.right = left ? left.right : this.start;
    if (left) left.right = item;
    else this.start = item;
    if (item.right) item.right.left = item;
    this.seq.insertAfter(left, item.right, item);
    group.insert(item);
  }

  /** The element-by-element scan, if it ends within `listTuning.steps` elements. */
  private scan(item: ListItem<T>): { left: ListItem<T> | undefined } | undefined {
    const { origin, rightOrigin } = item;
    const passed = this.passed; // the elements after left
    passed.clear();
    let left = origin;
    let o = origin ? origin.right : this.start;
    for (let steps = 0; o; steps++, o = o.right) {
      if (steps >= listTuning.steps) return undefined;
      sequenceStats.visits++;
      if (o === rightOrigin || (origin && (o.tin <= origin.tin || o.tin > origin.tout))) break;
      if (o.origin === origin) {
        if (compareStrings(o.id, item.id) > 0) {
          left = o;
          passed.clear();
          continue;
        }
        if (o.rightOrigin === rightOrigin) break;
        passed.add(o);
      } else if (passed.has(o.origin!)) passed.add(o);
      else {
        left = o;
        passed.clear();
      }
    }
    return { left };
  }

  /** Where the scan would leave `item`, by searches (see `integrate`). */
  private search(item: ListItem<T>, group: SiblingGroup): ListItem<T> | undefined {
    const seq = this.seq;
    const { origin, rightOrigin } = item;
    const from = seq.indexOf(origin) + 1;
    const depth = origin ? origin.depth + 1 : 0;
    let stop = seq.length;
    const outside = origin ? seq.firstOutside(from, origin.tin + 1, origin.tout) : undefined;
    if (outside) stop = seq.indexOf(outside);
    const rIndex = rightOrigin ? seq.indexOf(rightOrigin) : -1;
    if (rIndex >= from && rIndex < stop) stop = rIndex;
    const smaller = group.firstBelow(item.id);
    if (smaller) stop = Math.min(stop, seq.indexOf(smaller));
    const larger = seq.lastAbove(from, stop - 1, depth, item.id);
    if (!larger) return origin;
    return seq.firstFree(seq.indexOf(larger), stop - 1, depth) as ListItem<T>;
  }

  private siblingsOf(origin: ListItem<T> | undefined, rightOrigin: ListItem<T> | undefined): SiblingGroup {
    let byRight = this.siblings.get(origin ?? null);
    if (!byRight) this.siblings.set(origin ?? null, (byRight = new Map()));
    let group = byRight.get(rightOrigin ?? null);
    if (!group) byRight.set(rightOrigin ?? null, (group = new SiblingGroup((n) => this.seq.indexOf(n))));
    return group;
  }
}
