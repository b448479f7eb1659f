/**
 * Bounded structures for memory that must stay constant however much
 * traffic passes. Neither evicts with `values().next()` on a JS Set or Map:
 * V8 leaves a hole for each deleted entry until it rebuilds the table, and
 * that iterator walks the holes from the start, so at a steady size with
 * one eviction per insert each insert cost thousands of steps (measured:
 * 23 µs per dedup add at capacity 10,000; a put flood stalled the event
 * loop for seconds).
 */

/** A set that forgets its oldest entries past `capacity` (insertion order kept in a ring). */
export class BoundedSet<T> {
  private readonly items = new Set<T>();
  /** Insertion order; entries before `head` are gone. Compacted once `head` passes `capacity`. */
  private order: T[] = [];
  private head = 0;

  constructor(readonly capacity: number) {
    if (capacity < 1) throw new RangeError("capacity must be >= 1");
  }

  has(value: T): boolean {
    return this.items.has(value);
  }

  /** Adds the value; returns false when it was already present. */
  add(value: T): boolean {
    if (this.items.has(value)) return false;
    this.items.add(value);
    this.order.push(value);
    while (this.items.size > this.capacity && this.head < this.order.length) {
      // An entry deleted (and maybe re-added) since is evicted early at worst: fine for dedup.
      this.items.delete(this.order[this.head++]!);
    }
    if (this.head >= this.capacity) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  delete(value: T): boolean {
    return this.items.delete(value);
  }

  get size(): number {
    return this.items.size;
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.items.values();
  }

  clear(): void {
    this.items.clear();
    this.order = [];
    this.head = 0;
  }
}

/**
 * A map that keeps about the `capacity` most recently used entries, in two
 * generations (as quick-lru does): entries used since the last turnover
 * live in `recent`; when it is full it becomes `old` and the previous `old`
 * is dropped whole. A hit in `old` moves the entry to `recent`. At most
 * 2 × capacity entries are held; nothing is ever deleted one by one.
 */
export class LruMap<K, V> {
  private recent = new Map<K, V>();
  private old = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (capacity < 1) throw new RangeError("capacity must be >= 1");
  }

  get(key: K): V | undefined {
    const value = this.recent.get(key);
    if (value !== undefined) return value;
    const aged = this.old.get(key);
    if (aged !== undefined) {
      this.old.delete(key);
      this.put(key, aged);
    }
    return aged;
  }

  set(key: K, value: V): void {
    if (this.recent.has(key)) this.recent.set(key, value);
    else {
      this.old.delete(key);
      this.put(key, value);
    }
  }

  private put(key: K, value: V): void {
    if (this.recent.size >= this.capacity) {
      this.old = this.recent;
      this.recent = new Map();
    }
    this.recent.set(key, value);
  }

  delete(key: K): boolean {
    const a = this.recent.delete(key);
    const b = this.old.delete(key);
    return a || b;
  }

  get size(): number {
    return this.recent.size + this.old.size;
  }

  /** The keys held, the least recently set or read first. */
  *keys(): IterableIterator<K> {
    yield* this.old.keys();
    yield* this.recent.keys();
  }

  clear(): void {
    this.recent.clear();
    this.old.clear();
  }
}
