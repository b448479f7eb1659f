import { compareStrings } from "./canonical.js";
import { sequenceStats, treapPriorities, type SeqNode } from "./list-sequence.js";

interface GroupNode {
  item: SeqNode;
  l: GroupNode | undefined;
  r: GroupNode | undefined;
  prio: number;
  /** The smallest id in the subtree. */
  minId: string;
}

/**
 * The children of one origin that share one right origin, in list order, in
 * a treap with the smallest id of each subtree: the first of them (in list
 * order) with an id below a given one in O(log n), an insert in O(log² n).
 */
export class SiblingGroup {
  private root: GroupNode | undefined;

  constructor(private readonly indexOf: (node: SeqNode) => number) {}

  /** Adds `item`, already in the list. */
  insert(item: SeqNode): void {
    const at = this.indexOf(item);
    this.root = this.put(this.root, { item, l: undefined, r: undefined, prio: treapPriorities.random(), minId: item.id }, at);
  }

  /** The first member in list order whose id sorts before `id`. */
  firstBelow(id: string): SeqNode | undefined {
    let t = this.root;
    if (!t || compareStrings(t.minId, id) >= 0) return undefined;
    for (;;) {
      sequenceStats.visits++;
      if (t.l && compareStrings(t.l.minId, id) < 0) t = t.l;
      else if (compareStrings(t.item.id, id) < 0) return t.item;
      else t = t.r!;
    }
  }

  /** Puts `node` (at list index `at`) into the subtree `t`, rotating it up past parents of larger priority. */
  private put(t: GroupNode | undefined, node: GroupNode, at: number): GroupNode {
    if (!t) return node;
    sequenceStats.visits++;
    const side = at < this.indexOf(t.item) ? "l" : "r";
    const other = side === "l" ? "r" : "l";
    const child = this.put(t[side], node, at);
    t[side] = child;
    if (child.prio >= t.prio) {
      update(t);
      return t;
    }
    t[side] = child[other];
    child[other] = t;
    update(t);
    update(child);
    return child;
  }
}

function update(t: GroupNode): void {
  let min = t.item.id;
  if (t.l && compareStrings(t.l.minId, min) < 0) min = t.l.minId;
  if (t.r && compareStrings(t.r.minId, min) < 0) min = t.r.minId;
  t.minId = min;
}
