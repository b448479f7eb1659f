import type { ToolDbRecord } from "../records/record.js";

export type KeyListener = (record: ToolDbRecord) => void;

/**
 * Local listeners per key (addKeyListener/removeKeyListener). Ids are never
 * reused; removed entries are deleted, not nulled, so the table stays the
 * size of the live listeners.
 */
export class KeyListeners {
  private nextId = 0;
  private readonly byId = new Map<number, { key: string; fn: KeyListener }>();
  private readonly byKey = new Map<string, Set<number>>();

  add(key: string, fn: KeyListener): number {
    const id = this.nextId++;
    this.byId.set(id, { key, fn });
    let ids = this.byKey.get(key);
    if (!ids) this.byKey.set(key, (ids = new Set()));
    ids.add(id);
    return id;
  }

  remove(id: number): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    this.byId.delete(id);
    const ids = this.byKey.get(entry.key);
    ids?.delete(id);
    if (ids && ids.size === 0) this.byKey.delete(entry.key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** Calls every listener of the key; a throwing listener does not stop the others. */
  trigger(record: ToolDbRecord, onError: (err: unknown) => void): void {
    const ids = this.byKey.get(record.k);
    if (!ids) return;
    for (const id of [...ids]) {
      const entry = this.byId.get(id);
      if (!entry) continue;
      try {
        entry.fn(record);
      } catch (err) {
        onError(err);
      }
    }
  }

  clear(): void {
    this.byId.clear();
    this.byKey.clear();
  }
}
