/**
 * ListCrdt's integration as it was before the Sequence (element by element,
 * O(k*m) on some shapes), kept as the oracle that the new one must equal.
 */
import type { ListChange, ListInsChange } from "../../src/crdt/index.js";
import { compareStrings } from "../../src/crdt/canonical.js";

interface OldItem {
  change: ListInsChange<unknown>;
  left: OldItem | undefined;
  right: OldItem | undefined;
  origin: OldItem | undefined;
  rightOrigin: OldItem | undefined;
}

/** The integration as it was (tooldb-dht before the Sequence), unchanged but for the item type. */
export function oldOrder(sorted: ListChange<unknown>[]): unknown[] {
  const byId = new Map<string, OldItem>();
  const deletes = new Set<string>();
  for (const c of sorted) {
    if (c.t === "DEL") deletes.add(c.v);
    else if (!byId.has(c.i)) byId.set(c.i, { change: c, left: undefined, right: undefined, origin: undefined, rightOrigin: undefined });
  }
  let start: OldItem | undefined;
  const integrated = new Set<OldItem>();
  const integrate = (item: OldItem) => {
    const origin = item.change.p == null ? undefined : byId.get(item.change.p);
    const rightOrigin = item.change.n == null ? undefined : byId.get(item.change.n);
    item.origin = origin && integrated.has(origin) ? origin : undefined;
    item.rightOrigin = rightOrigin && integrated.has(rightOrigin) ? rightOrigin : undefined;
    let left = item.origin;
    let o = left ? left.right : start;
    const conflicting = new Set<OldItem>();
    const beforeOrigin = new Set<OldItem>();
    while (o && o !== item.rightOrigin) {
      beforeOrigin.add(o);
      conflicting.add(o);
      if (o.origin === item.origin) {
        if (compareStrings(o.change.i, item.change.i) > 0) {
          left = o;
          conflicting.clear();
        } else if (o.rightOrigin === item.rightOrigin) {
          break;
        }
      } else if (o.origin && beforeOrigin.has(o.origin)) {
        if (!conflicting.has(o.origin)) {
          left = o;
          conflicting.clear();
        }
      } else {
        break;
      }
      o = o.right;
    }
    item.left = left;
    item.right = left ? left.right : start;
    if (left) left.right = item;
    else start = item;
    if (item.right) item.right.left = item;
    integrated.add(item);
  };
  const visiting = new Set<OldItem>();
  for (const root of byId.values()) {
    const stack: OldItem[] = [root];
    while (stack.length > 0) {
      const item = stack[stack.length - 1]!;
      if (integrated.has(item)) {
        stack.pop();
        continue;
      }
      visiting.add(item);
      const deps = [item.change.p, item.change.n]
        .map((id) => (id == null ? undefined : byId.get(id)))
        .filter((d): d is OldItem => d !== undefined && !integrated.has(d) && !visiting.has(d));
      if (deps.length > 0) {
        stack.push(deps[0]!);
        continue;
      }
      stack.pop();
      visiting.delete(item);
      integrate(item);
    }
  }
  const value: unknown[] = [];
  for (let item = start; item; item = item.right) if (!deletes.has(item.change.i)) value.push(item.change.v);
  return value;
}

