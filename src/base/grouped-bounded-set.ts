/**
 * A set bounded in total and per group. A group past its share forgets its
 * own oldest entries, so one group cannot push the others out; past the
 * total, the oldest entry overall goes, as in BoundedSet. The handshake
 * groups the identities that proved themselves by address range: one host
 * minting identities and proving each of them only cycles its own range's
 * share, and the identities of everyone else stay remembered.
 */
export class GroupedBoundedSet<T> {
  private readonly groupOf = new Map<T, string>();
  /** Each group's members, oldest first (at most `perGroup`, so shifting is cheap). */
  private readonly members = new Map<string, T[]>();
  /** Insertion order over all groups; may hold entries forgotten since (skipped), compacted as it grows. */
  private order: T[] = [];
  private head = 0;

  constructor(
    readonly capacity: number,
    readonly perGroup: number,
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
    if (list.length >= this.perGroup) this.groupOf.delete(list.shift()!);
    list.push(value);
    this.groupOf.set(value, group);
    this.order.push(value);
    while (this.groupOf.size > this.capacity && this.head < this.order.length) this.forget(this.order[this.head++]!);
    // Entries a group cycled out stay in `order`: compact before it outgrows twice the capacity.
    if (this.head >= this.capacity || this.order.length > 2 * this.capacity) this.compact();
    return true;
  }

  /** Keeps the latest insertion of each value still present, in order. */
  private compact(): void {
    const seen = new Set<T>();
    const kept: T[] = [];
    for (let i = this.order.length - 1; i >= this.head; i--) {
      const v = this.order[i]!;
      if (this.groupOf.has(v) && !seen.has(v)) {
        seen.add(v);
        kept.push(v);
      }
    }
    this.order = kept.reverse();
    this.head = 0;
  }

  private forget(value: T): void {
    const group = this.groupOf.get(value);
    if (group === undefined) return;
    this.groupOf.delete(value);
    const list = this.members.get(group)!;
    list.splice(list.indexOf(value), 1);
    if (list.length === 0) this.members.delete(group);
  }

  get size(): number {
    return this.groupOf.size;
  }
}
