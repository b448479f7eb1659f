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
  /** The largest id among the subtree's nodes of depth `minDepth`. */
  maxId: string;
  /** The first in the sequence of the subtree's nodes' origins; of those of nodes deeper than `minDepth`. */
  firstOrigin: SeqNode | undefined;
  firstOriginBelowMin: SeqNode | undefined;
  /**
   * The subtree's first node p that no later node of the subtree has its origin at or before (see
   * `firstFree`); counting every node, or only those deeper than `minDepth`.
   */
  freeAll: SeqNode | undefined;
  freeBelowMin: SeqNode | undefined;
}

/** Instrumentation: sequence nodes visited (inserts, index look-ups and searches) since the last reset. */
export const sequenceStats = { visits: 0 };

/** Where the treaps' random priorities come from (a test seeds it: one build's cost varies with them, up to ~2 ×). */
export const treapPriorities = { random: Math.random };

/**
 * A list of nodes in a treap (random priorities, so no insertion order
 * degrades it) with subtree aggregates: insert after a node, a node's index,
 * the first node outside a subtree of origins from an index, the last child
 * of a node with an id above a given one in a range, and the first "free"
 * node of a range (`firstFree`), each in O(log² n) expected.
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
    for (let p = node.up; p; p = p.up) if (!pull(p)) break;
    while (node.up && node.prio < node.up.prio) this.rotateUp(node);
  }

  /** The node's 0-based index; -1 for undefined (before every node). */
  indexOf(node: SeqNode | undefined): number {
    return indexOf(node);
  }

  /** The first node at index >= from whose `tin` is outside [lo, hi] (not a descendant of the node of that interval), if any. */
  firstOutside(from: number, lo: number, hi: number): SeqNode | undefined {
    return find(this.root, Math.max(0, from), lo, hi);
  }

  /** The last node of depth `depth` with an id above `id` at an index in [a, b], where every node has depth >= `depth`. */
  lastAbove(a: number, b: number, depth: number, id: string): SeqNode | undefined {
    const above = (n: SeqNode) => n.minDepth === depth && compareStrings(n.maxId, id) > 0;
    for (let i = collect(this.root, a, b) - 1; i >= 0; i--) {
      const node = pieceNodes[i]!;
      if (!pieceWhole[i]) {
        if (node.depth === depth && compareStrings(node.id, id) > 0) return node;
        continue;
      }
      if (!above(node)) continue;
      let t = node;
      for (;;) {
        sequenceStats.visits++;
        if (t.r && above(t.r)) t = t.r;
        else if (t.depth === depth && compareStrings(t.id, id) > 0) return t;
        else t = t.l!;
      }
    }
    return undefined;
  }

  /**
   * The first node p at an index in [a, b] such that no node after p up to index b and deeper than `depth` has
   * its origin at or before p. Every node in [a, b] must have depth >= `depth`.
   */
  firstFree(a: number, b: number, depth: number): SeqNode {
    let reach: SeqNode | undefined; // the first origin of the deeper nodes after the part at hand
    let free: SeqNode | undefined;
    for (let i = collect(this.root, a, b) - 1; i >= 0; i--) {
      const node = pieceNodes[i]!;
      const whole = pieceWhole[i]!;
      const below = whole && node.minDepth === depth;
      const candidate = !whole ? node : below ? node.freeBelowMin! : node.freeAll!;
      if (!reach || indexOf(candidate) < indexOf(reach)) free = candidate;
      const origins = !whole ? (node.depth > depth ? node.origin : undefined) : below ? node.firstOriginBelowMin : node.firstOrigin;
      reach = first(reach, origins);
    }
    return free!;
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
  node.prio = treapPriorities.random();
  node.size = 1;
  pull(node);
}

function attach(parent: SeqNode, side: "l" | "r", node: SeqNode): void {
  parent[side] = node;
  node.up = parent;
}

const size = (n: SeqNode | undefined) => n?.size ?? 0;

/**
 * Recomputes a node's aggregates from its children's (sizes are set first: comparisons need them); false when
 * none changed (then no ancestor's changes either: an aggregate depends on its children's and the order of
 * nodes, which never changes).
 */
function pull(n: SeqNode): boolean {
  sequenceStats.visits++;
  const { minTin, maxTin, minDepth, maxId, firstOrigin, firstOriginBelowMin, freeAll, freeBelowMin } = n;
  n.minTin = n.maxTin = n.tin;
  n.minDepth = n.depth;
  n.maxId = n.id;
  if (n.l) pullBounds(n, n.l);
  if (n.r) pullBounds(n, n.r);
  memoed = 0;
  n.firstOrigin = n.origin;
  n.firstOriginBelowMin = n.depth > n.minDepth ? n.origin : undefined;
  if (n.l) pullOrigins(n, n.l);
  if (n.r) pullOrigins(n, n.r);
  n.freeAll = freeOf(n, false);
  n.freeBelowMin = freeOf(n, true);
  return (
    minTin !== n.minTin ||
    maxTin !== n.maxTin ||
    minDepth !== n.minDepth ||
    maxId !== n.maxId ||
    firstOrigin !== n.firstOrigin ||
    firstOriginBelowMin !== n.firstOriginBelowMin ||
    freeAll !== n.freeAll ||
    freeBelowMin !== n.freeBelowMin
  );
}

function pullBounds(n: SeqNode, c: SeqNode): void {
  if (c.minTin < n.minTin) n.minTin = c.minTin;
  if (c.maxTin > n.maxTin) n.maxTin = c.maxTin;
  if (c.minDepth < n.minDepth) {
    n.minDepth = c.minDepth;
    n.maxId = c.maxId;
  } else if (c.minDepth === n.minDepth && compareStrings(c.maxId, n.maxId) > 0) n.maxId = c.maxId;
}

function pullOrigins(n: SeqNode, c: SeqNode): void {
  n.firstOrigin = firstOf(n.firstOrigin, c.firstOrigin);
  n.firstOriginBelowMin = firstOf(n.firstOriginBelowMin, c.minDepth > n.minDepth ? c.firstOrigin : c.firstOriginBelowMin);
}

/** The indexes of the few nodes one `pull` compares (`memoed` of them). */
const memoNodes: (SeqNode | undefined)[] = [];
const memoAt: number[] = [];
let memoed = 0;

function ix(node: SeqNode): number {
  for (let i = 0; i < memoed; i++) if (memoNodes[i] === node) return memoAt[i]!;
  const at = indexOf(node);
  memoNodes[memoed] = node;
  memoAt[memoed++] = at;
  return at;
}

const firstOf = (a: SeqNode | undefined, b: SeqNode | undefined) => (!a ? b : !b || a === b ? a : ix(a) < ix(b) ? a : b);

/**
 * A subtree's first free node: the left subtree's, if no origin of the node or of the right subtree (those
 * counted) is at or before it; else the node, if no origin of the right subtree is; else the right subtree's.
 * `below`: count only nodes deeper than the subtree's `minDepth` (a child's own variant where its `minDepth`
 * is the same, all of it where it is deeper).
 */
function freeOf(n: SeqNode, below: boolean): SeqNode {
  const r = n.r;
  const ownR = below && r !== undefined && r.minDepth === n.minDepth;
  const originsR = r ? (ownR ? r.firstOriginBelowMin : r.firstOrigin) : undefined;
  const l = n.l;
  if (l) {
    const freeL = below && l.minDepth === n.minDepth ? l.freeBelowMin! : l.freeAll!;
    const reach = firstOf(!below || n.depth > n.minDepth ? n.origin : undefined, originsR);
    if (!reach || ix(freeL) < ix(reach)) return freeL;
  }
  if (!originsR || ix(n) < ix(originsR)) return n;
  return ownR ? r!.freeBelowMin! : r!.freeAll!;
}

/** The nodes and whole subtrees that make up the indexes [a, b], in order (`pieces` of them; reused arrays). */
const pieceNodes: SeqNode[] = [];
const pieceWhole: boolean[] = [];
let pieceCount = 0;

function collect(root: SeqNode | undefined, a: number, b: number): number {
  pieceCount = 0;
  const walk = (n: SeqNode | undefined, offset: number): void => {
    if (!n || offset > b || offset + n.size - 1 < a) return;
    sequenceStats.visits++;
    if (a <= offset && offset + n.size - 1 <= b) return piece(n, true);
    const at = offset + size(n.l);
    walk(n.l, offset);
    if (at >= a && at <= b) piece(n, false);
    walk(n.r, at + 1);
  };
  if (a <= b) walk(root, 0);
  return pieceCount;
}

function piece(node: SeqNode, whole: boolean): void {
  pieceNodes[pieceCount] = node;
  pieceWhole[pieceCount++] = whole;
}

/** Can a subtree hold a node outside [lo, hi]? */
const mayMatch = (n: SeqNode, lo: number, hi: number) => n.minTin < lo || n.maxTin > hi;
const matches = (n: SeqNode, lo: number, hi: number) => n.tin < lo || n.tin > hi;

function find(n: SeqNode | undefined, from: number, lo: number, hi: number): SeqNode | undefined {
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
      if (matches(n, lo, hi)) return n;
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
      if (matches(e.node, lo, hi)) return e.node;
      continue;
    }
    sequenceStats.visits++;
    if (!mayMatch(e, lo, hi)) continue;
    // A match is in this subtree: take its first one.
    let t: SeqNode = e;
    for (;;) {
      sequenceStats.visits++;
      if (t.l && mayMatch(t.l, lo, hi)) t = t.l;
      else if (matches(t, lo, hi)) return t;
      else t = t.r!;
    }
  }
  return undefined;
}
