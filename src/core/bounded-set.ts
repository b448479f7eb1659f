/**
 * A set that forgets its oldest entries past `capacity`. Used for message-id
 * dedup so that memory stays constant however many messages pass.
 */
export class BoundedSet<T> {
  private readonly items = new Set<T>();
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
    if (this.items.size > this.capacity) {
      const oldest = this.items.values().next().value as T;
      this.items.delete(oldest);
    }
    return true;
  }

  delete(value: T): boolean {
    return this.items.delete(value);
  }

  get size(): number {
    return this.items.size;
  }

  clear(): void {
    this.items.clear();
  }
}

/** A map with least-recently-used eviction past `capacity`. */
export class LruMap<K, V> {
  private readonly items = new Map<K, V>();
  constructor(readonly capacity: number) {
    if (capacity < 1) throw new RangeError("capacity must be >= 1");
  }

  get(key: K): V | undefined {
    const value = this.items.get(key);
    if (value !== undefined) {
      this.items.delete(key);
      this.items.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.items.delete(key);
    this.items.set(key, value);
    if (this.items.size > this.capacity) {
      const oldest = this.items.keys().next().value as K;
      this.items.delete(oldest);
    }
  }

  delete(key: K): boolean {
    return this.items.delete(key);
  }

  get size(): number {
    return this.items.size;
  }

  clear(): void {
    this.items.clear();
  }
}
