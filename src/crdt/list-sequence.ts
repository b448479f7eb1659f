import { compareStrings } from "./canonical.js";

/**
 * An element of a `Sequence`: its place in the tree of origins (`tin`/`tout`,
 * the Euler-tour interval: e is a descendant of d iff d.tin <= e.tin <= d.tout;
 * `depth`) and its id. The sequence keeps the tree links and subtree
 * aggregates itself.
 */
export interface SeqNode {
  readonly id: string;
  readonly tin: number;
  readonly tout: number;
  readonly depth: number;
  l: SeqNode | undefined;
  r: SeqNode | undefined;
  up: SeqNode | undefined;
  prio: number;
  size: number;
  minTin: number;
  maxTin: number;
  minDepth: number;
  /** Smallest id among the subtree's nodes of depth `minDepth`. */
  minId: string;
}

/** What `Sequence.findFirst` looks for: a node outside [lo, hi], or of depth <= childDepth with an id below `below`. */
export interface SeqQuery {
  lo: number;
  hi: number;
  childDepth: number;
  below: string;
}

/** Instrumentation: sequence nodes visited (inserts, index look-ups and searches) since the last reset. */
export const sequenceStats = { visits: 0 };

/**
 * A list of nodes in a treap (random priorities, so no insertion order
 * degrades it) with subtree aggregates: insert after a node, a node's index,
 * and the first node from an index that matches a `SeqQuery`, each in
 * O(log n) expected.
 */
export class Sequence {
  private root: SeqNode | undefined;

  get length(): number {
    return this.root?.size ?? 0;
  }

  /** Puts `node` right after `after` (at the front when undefined); `next` is the node now after it, if any. */
  insertAfter(after: SeqNode | undefined, next: SeqNode | undefined, node: SeqNode): void {
    reset(node);
    if (!this.root) {
      this.root = node;
      return;
    }
    // In-order position: the right child of `after`, or the left child of the node that follows it.
    if (after && !after.r) attach(after, "r", node);
    else if (next && !next.l) attach(next, "l", node);
    else {
      let succ = after ? after.r! : this.root;
      while (succ.l) succ = succ.l;
      attach(succ, "l", node);
    }
    for (let p = node.up; p; p = p.up) pull(p);
    while (node.up && node.prio < node.up.prio) this.rotateUp(node);
  }

  /** The node's 0-based index; -1 for undefined (before every node). */
  indexOf(node: SeqNode | undefined): number {
    if (!node) return -1;
    let i = size(node.l);
    for (let n = node; n.up; n = n.up) {
      sequenceStats.visits++;
      if (n.up.r === n) i += size(n.up.l) + 1;
    }
    return i;
  }

  /** The first node at index >= from that matches `q`, if any. */
  findFirst(from: number, q: SeqQuery): SeqNode | undefined {
    return find(this.root, Math.max(0, from), q);
  }

  private rotateUp(x: SeqNode): void {
    const p = x.up!;
    const g = p.up;
    if (p.l === x) {
      p.l = x.r;
      if (x.r) x.r.up = p;
      x.r = p;
    } else {
      p.r = x.l;
      if (x.l) x.l.up = p;
      x.l = p;
    }
    p.up = x;
    x.up = g;
    if (!g) this.root = x;
    else if (g.l === p) g.l = x;
    else g.r = x;
    pull(p);
    pull(x);
  }
}

function reset(node: SeqNode): void {
  node.l = node.r = node.up = undefined;
  node.prio = Math.random();
  pull(node);
}

function attach(parent: SeqNode, side: "l" | "r", node: SeqNode): void {
  parent[side] = node;
  node.up = parent;
}

const size = (n: SeqNode | undefined) => n?.size ?? 0;

function pull(n: SeqNode): void {
  sequenceStats.visits++;
  n.size = 1;
  n.minTin = n.maxTin = n.tin;
  n.minDepth = n.depth;
  n.minId = n.id;
  for (const c of [n.l, n.r]) {
    if (!c) continue;
    n.size += c.size;
    if (c.minTin < n.minTin) n.minTin = c.minTin;
    if (c.maxTin > n.maxTin) n.maxTin = c.maxTin;
    if (c.minDepth < n.minDepth) {
      n.minDepth = c.minDepth;
      n.minId = c.minId;
    } else if (c.minDepth === n.minDepth && compareStrings(c.minId, n.minId) < 0) n.minId = c.minId;
  }
}

const matches = (n: SeqNode, q: SeqQuery) => n.tin < q.lo || n.tin > q.hi || (n.depth <= q.childDepth && compareStrings(n.id, q.below) < 0);

/** Can a subtree hold a match? Every aggregate that says so has a node that matches behind it. */
const mayMatch = (n: SeqNode, q: SeqQuery) => n.minTin < q.lo || n.maxTin > q.hi || (n.minDepth <= q.childDepth && compareStrings(n.minId, q.below) < 0);

function find(n: SeqNode | undefined, from: number, q: SeqQuery): SeqNode | undefined {
  // Iterative: down the path to index `from`, remembering right subtrees and nodes still to look at.
  const pending: (SeqNode | { node: SeqNode })[] = [];
  while (n) {
    sequenceStats.visits++;
    if (from >= n.size) break;
    const left = size(n.l);
    if (from < left) {
      if (n.r) pending.push(n.r);
      pending.push({ node: n });
      n = n.l;
    } else if (from === left) {
      if (matches(n, q)) return n;
      n = n.r;
      from = 0;
      break;
    } else {
      from -= left + 1;
      n = n.r;
    }
  }
  // `n` (when from is 0) and then the pending entries, innermost first, are in index order.
  if (n && from === 0) pending.push(n);
  while (pending.length > 0) {
    const e = pending.pop()!;
    if ("node" in e) {
      if (matches(e.node, q)) return e.node;
      continue;
    }
    sequenceStats.visits++;
    if (!mayMatch(e, q)) continue;
    // A match is in this subtree: take its first one.
    let t: SeqNode = e;
    for (;;) {
      sequenceStats.visits++;
      if (t.l && mayMatch(t.l, q)) t = t.l;
      else if (matches(t, q)) return t;
      else t = t.r!;
    }
  }
  return undefined;
}
