/**
 * Bounds on CRDT documents. A change list (one signed record) or a stored
 * document (the union of its heads' changes) over `maxChanges` is refused
 * with a reason; so is a document with more than `maxHeads` concurrent
 * signed change lists (a writer that merged them all and put again collapses
 * them into one head).
 */
export const CRDT_LIMITS = {
  maxChanges: 20_000,
  maxHeads: 32,
  /** Longest map key, author and list element id. */
  maxIdLength: 1024,
  maxTypeLength: 64,
} as const;
