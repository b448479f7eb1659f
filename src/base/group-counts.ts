/**
 * How many entries each group holds, and which group holds the most, kept
 * up to date one entry at a time instead of found by scanning every group:
 * the groups are indexed by their count, each count's groups in the order
 * they reached it, so among the groups of the largest count the one that
 * reached it first is the one named. GroupedBoundedSet and the pending-request
 * shares (node/request-shares.ts) give up an entry of that group when full.
 */
export class GroupCounts<G> {
  private readonly counts = new Map<G, number>();
  /** Groups by their count, each set in the order its groups reached that count (a group of 0 is in none). */
  private readonly byCount = new Map<number, Set<G>>();
  /** At least the largest count (lowered lazily by `largest`). */
  private top = 0;

  /** How many entries `group` holds (0 for a group never counted, or emptied). */
  count(group: G): number {
    return this.counts.get(group) ?? 0;
  }

  /** Counts one more entry for `group`; it becomes the last of the groups of its new count. */
  increment(group: G): void {
    const before = this.count(group);
    this.leave(group, before);
    this.counts.set(group, before + 1);
    this.enter(group, before + 1);
    if (before + 1 > this.top) this.top = before + 1;
  }

  /** Counts one entry fewer for `group` (nothing for a group at 0); it becomes the last of the groups of its new count. */
  decrement(group: G): void {
    const before = this.count(group);
    if (before === 0) return;
    this.leave(group, before);
    if (before === 1) this.counts.delete(group);
    else {
      this.counts.set(group, before - 1);
      this.enter(group, before - 1);
    }
  }

  /** The group with the largest count (the first to reach it); undefined when every group is at 0. */
  largest(): G | undefined {
    // `top` rises by one an increment at most, so lowering it here costs no more than the increments did.
    while (this.top > 0 && !this.byCount.has(this.top)) this.top--;
    return this.byCount.get(this.top)?.values().next().value;
  }

  private enter(group: G, count: number): void {
    let groups = this.byCount.get(count);
    if (!groups) this.byCount.set(count, (groups = new Set()));
    groups.add(group);
  }

  private leave(group: G, count: number): void {
    const groups = this.byCount.get(count);
    if (groups?.delete(group) && groups.size === 0) this.byCount.delete(count);
  }
}
