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
  /** The parent in the tree of origins (in the sequence before this node). */
  readonly origin: SeqNode | undefined;
  l: SeqNode | undefined;
  r: SeqNode | undefined;
  up: SeqNode | undefined;
  prio: number;
  size: number;
  minTin: number;
  maxTin: number;
  minDepth: number;
  /** Smallest and largest id among the subtree's nodes of depth `minDepth`. */
  minId: string;
  maxId: string;
  /** The first in the sequence of the subtree's nodes' origins; of those of nodes deeper than `minDepth`. */
  firstOrigin: SeqNode | undefined;
  firstOriginBelowMin: SeqNode | undefined;
}

/**
 * What `Sequence.findFirst` looks for: a node outside [lo, hi] (the descendants of a node), or of depth <=
 * childDepth (its children) with an id below `below` or above `above`, or deeper with its origin at an index
 * <= `originUpTo`.
 */
export interface SeqQuery {
  lo: number;
  hi: number;
  childDepth: number;
  below?: string;
  above?: string;
  originUpTo?: number;
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
    for (let p = node.up; p; p = p.up) p.size++;
    for (let p = node.up; p; p = p.up) pull(p);
    while (node.up && node.prio < node.up.prio) this.rotateUp(node);
  }

  /** The node's 0-based index; -1 for undefined (before every node). */
  indexOf(node: SeqNode | undefined): number {
    return indexOf(node);
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
    p.size = 1 + size(p.l) + size(p.r);
    x.size = 1 + size(x.l) + size(x.r);
    pull(p);
    pull(x);
  }
}

function indexOf(node: SeqNode | undefined): number {
  if (!node) return -1;
  let i = size(node.l);
  for (let n = node; n.up; n = n.up) {
    sequenceStats.visits++;
    if (n.up.r === n) i += size(n.up.l) + 1;
  }
  return i;
}

/** The one of two nodes first in the sequence (order between nodes never changes, so an aggregate of it stays true). */
function first(a: SeqNode | undefined, b: SeqNode | undefined): SeqNode | undefined {
  if (!a) return b;
  if (!b || a === b) return a;
  return indexOf(a) < indexOf(b) ? a : b;
}

function reset(node: SeqNode): void {
  node.l = node.r = node.up = undefined;
  node.prio = Math.random();
  node.size = 1;
  pull(node);
}

function attach(parent: SeqNode, side: "l" | "r", node: SeqNode): void {
  parent[side] = node;
  node.up = parent;
}

const size = (n: SeqNode | undefined) => n?.size ?? 0;

/** Recomputes a node's aggregates from its children's (sizes are set first: `first` needs them). */
function pull(n: SeqNode): void {
  sequenceStats.visits++;
  n.minTin = n.maxTin = n.tin;
  n.minDepth = n.depth;
  n.minId = n.maxId = n.id;
  for (const c of [n.l, n.r]) {
    if (!c) continue;
    if (c.minTin < n.minTin) n.minTin = c.minTin;
    if (c.maxTin > n.maxTin) n.maxTin = c.maxTin;
    if (c.minDepth < n.minDepth) {
      n.minDepth = c.minDepth;
      n.minId = c.minId;
      n.maxId = c.maxId;
    } else if (c.minDepth === n.minDepth) {
      if (compareStrings(c.minId, n.minId) < 0) n.minId = c.minId;
      if (compareStrings(c.maxId, n.maxId) > 0) n.maxId = c.maxId;
    }
  }
  let all = n.origin;
  let belowMin = n.depth > n.minDepth ? n.origin : undefined;
  for (const c of [n.l, n.r]) {
    if (!c) continue;
    all = first(all, c.firstOrigin);
    belowMin = first(belowMin, c.minDepth > n.minDepth ? c.firstOrigin : c.firstOriginBelowMin);
  }
  n.firstOrigin = all;
  n.firstOriginBelowMin = belowMin;
}

const childMatches = (depth: number, minId: string, maxId: string, q: SeqQuery) =>
  depth <= q.childDepth && ((q.below !== undefined && compareStrings(minId, q.below) < 0) || (q.above !== undefined && compareStrings(maxId, q.above) > 0));

const matches = (n: SeqNode, q: SeqQuery) =>
  n.tin < q.lo ||
  n.tin > q.hi ||
  childMatches(n.depth, n.id, n.id, q) ||
  (q.originUpTo !== undefined && n.depth > q.childDepth && indexOf(n.origin) <= q.originUpTo);

/** Can a subtree hold a match? Every aggregate that says so has a node that matches behind it. */
const mayMatch = (n: SeqNode, q: SeqQuery) =>
  n.minTin < q.lo ||
  n.maxTin > q.hi ||
  childMatches(n.minDepth, n.minId, n.maxId, q) ||
  (q.originUpTo !== undefined && deeperOriginUpTo(n.minDepth <= q.childDepth ? n.firstOriginBelowMin : n.firstOrigin, q.originUpTo));

const deeperOriginUpTo = (origin: SeqNode | undefined, upTo: number) => origin !== undefined && indexOf(origin) <= upTo;

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
