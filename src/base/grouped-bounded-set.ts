import { GroupCounts } from "./group-counts.js";

/**
 * A set bounded in total and per group. A group past its share forgets its
 * own oldest entries; past the total, the oldest entry of the largest group
 * goes (among groups of that size, the one that reached it first). So a
 * flood from a few groups, or from many groups of two or more entries each,
 * only ever cycles its own entries: evicting a group of one (everyone else's
 * usual size) takes as many groups of one as the capacity. The handshake
 * groups the identities that proved themselves by address site (/24, /48),
 * the server directory the servers it learned by the site that listed them.
 */
export class GroupedBoundedSet<T> {
  private readonly groupOf = new Map<T, string>();
  /** Each group's members, oldest first (at most `perGroup`, so shifting is cheap). */
  private readonly members = new Map<string, T[]>();
  /** Each group's size, and the largest group (nothing sized by perGroup up front: it may be large). */
  private readonly sizes = new GroupCounts<string>();

  constructor(
    readonly capacity: number,
    readonly perGroup: number,
    /** Called with each value the set forgets to make room (not for values never added). */
    private readonly onForget?: (value: T) => void,
  ) {
    if (capacity < 1 || perGroup < 1) throw new RangeError("capacity and perGroup must be >= 1");
  }

  has(value: T): boolean {
    return this.groupOf.has(value);
  }

  /** Adds `value` to `group`; returns false when it was already present (in any group). */
  add(value: T, group: string): boolean {
    if (this.groupOf.has(value)) return false;
    let list = this.members.get(group);
    if (!list) this.members.set(group, (list = []));
    if (list.length >= this.perGroup) this.evictFrom(group, list);
    if (list.length === 0) this.members.set(group, list); // evictFrom let an emptied group go
    list.push(value);
    this.sizes.increment(group);
    this.groupOf.set(value, group);
    while (this.groupOf.size > this.capacity) this.evictFromLargest();
    return true;
  }

  get size(): number {
    return this.groupOf.size;
  }

  private evictFromLargest(): void {
    const group = this.sizes.largest();
    if (group === undefined) return;
    this.evictFrom(group, this.members.get(group)!);
  }

  /** Forgets the oldest member of `group`. */
  private evictFrom(group: string, list: T[]): void {
    const value = list.shift()!;
    this.sizes.decrement(group);
    this.groupOf.delete(value);
    if (list.length === 0) this.members.delete(group);
    this.onForget?.(value);
  }
}
