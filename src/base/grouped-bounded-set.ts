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
  /** Groups by their size, each set in the order its groups reached that size (made when first needed: perGroup may be large). */
  private readonly bySize = new Map<number, Set<string>>();
  private largest = 0;

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
    this.leaveSize(group, list.length);
    list.push(value);
    this.enterSize(group, list.length);
    this.largest = Math.max(this.largest, list.length);
    this.groupOf.set(value, group);
    while (this.groupOf.size > this.capacity) this.evictFromLargest();
    return true;
  }

  get size(): number {
    return this.groupOf.size;
  }

  private evictFromLargest(): void {
    // `largest` rises by one an add at most, so this scan costs no more than the adds did.
    while (this.largest > 0 && !this.bySize.has(this.largest)) this.largest--;
    const group = this.bySize.get(this.largest)?.values().next().value;
    if (group === undefined) return;
    this.evictFrom(group, this.members.get(group)!);
  }

  /** Forgets the oldest member of `group`. */
  private evictFrom(group: string, list: T[]): void {
    this.leaveSize(group, list.length);
    const value = list.shift()!;
    this.groupOf.delete(value);
    if (list.length === 0) this.members.delete(group);
    else this.enterSize(group, list.length);
    this.onForget?.(value);
  }

  private enterSize(group: string, size: number): void {
    let groups = this.bySize.get(size);
    if (!groups) this.bySize.set(size, (groups = new Set()));
    groups.add(group);
  }

  private leaveSize(group: string, size: number): void {
    const groups = this.bySize.get(size);
    if (groups?.delete(group) && groups.size === 0) this.bySize.delete(size);
  }
}
