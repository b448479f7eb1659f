/**
 * Link weights of the broadcast tree: every server link gets a number that
 * both ends compute alike from the two client ids, unique in practice. A
 * cycle of tree links is cut only at its heaviest link (the cycle rule of a
 * minimum spanning tree), whichever record revealed it: overlapping
 * broadcasts from different origins then agree on the link to cut, instead
 * of each cutting a different link of the same cycle and splitting the tree.
 *
 * Each server has a rank (a hash of its id); a link weighs by the lower rank
 * of its ends first. The tree keeps the links of low-ranked servers, which
 * makes it shallow (a server's lowest-ranked neighbour is a few hops from
 * the lowest of all) where random weights would make it about twice as deep.
 */


/** The weight of the link between two client ids: the lower rank of the two, then the top 20 bits of the higher. */
export function linkWeight(a: string, b: string): number {
  const ra = rank(a);
  const rb = rank(b);
  const low = Math.min(ra, rb);
  const high = Math.max(ra, rb);
  return low * 2 ** 20 + Math.floor(high / 2 ** 12) + 1;
}

/** FNV-1a, 32 bits. */
function rank(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
