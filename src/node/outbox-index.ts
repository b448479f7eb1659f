import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import { coalesced } from "../base/coalesced.js";

/** Key prefix of the outbox slots in the node's key store (`<storageName>.keys`). */
export const OUTBOX_PREFIX = "outbox/";

/** A link as the outbox's delivery state holds it (a PeerSession). */
export interface DeliveryLink {
  readonly address: string;
  readonly connection: { readonly closed: boolean };
}

export interface OutboxEntry {
  /** Record key. */
  readonly key: string;
  /** Hash of the write that waits for a confirmation. */
  h: string;
  /** Order of the last write to this key (oldest first). */
  seq: number;
  readonly slot: number;
  /** Distinct servers that must confirm the write before it leaves the outbox (the put's `ack`, at least 1). */
  need: number;
  // Delivery state, in memory only (see outbox-delivery.ts).
  /** Addresses of the servers that confirmed it. */
  confirmedBy?: Set<string>;
  /** Links it went out on since it was last answered, and when it last went out. */
  sentOn?: DeliveryLink[];
  sentAt?: number;
  /** Sends since it last went out on a new link (paces re-sends on a live, silent link). */
  tries: number;
  /** Refusals so far (a server's answer, or a link dropped while it alone was unanswered on it); it waits until `heldUntil`. */
  refusals: number;
  heldUntil?: number;
  /** It was unanswered on a link that a server dropped as refused: sent alone until that is cleared up. */
  suspect?: boolean;
}

function slotKey(slot: number): string {
  return `${OUTBOX_PREFIX}${String(slot).padStart(9, "0")}`;
}

/**
 * The outbox's entries (record key → hash of an unconfirmed write), at most
 * `capacity`, kept in memory and mirrored to fixed slots of a store so they
 * survive a restart. The store holds at most `capacity` slot keys whatever
 * the number of writes: a freed slot is overwritten with "" and reused, so
 * nothing needs deleting. Slot writes are batched: every write asked for
 * before a batch starts is in it.
 */
export class OutboxIndex {
  private readonly entries = new Map<string, OutboxEntry>();
  private readonly byHash = new Map<string, string>();
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private nextSeq = 0;
  private dirty = new Map<number, string>();
  private readonly writeDirty = coalesced(async () => {
    const batch = this.dirty;
    this.dirty = new Map();
    await Promise.all([...batch].map(([slot, value]) => this.store.put(slotKey(slot), value)));
  });

  constructor(
    private readonly store: ToolDbStorageAdapter,
    readonly capacity: number,
  ) {}

  /** Reads the slots a previous run left. */
  async load(): Promise<void> {
    const keys = await this.store.query(OUTBOX_PREFIX, this.capacity);
    const loaded: OutboxEntry[] = [];
    const used = new Set<number>();
    for (const key of keys) {
      const slot = Number(key.slice(OUTBOX_PREFIX.length));
      if (!Number.isInteger(slot)) continue;
      used.add(slot);
      const entry = parseSlot(await this.store.get(key), slot);
      if (entry) loaded.push(entry);
      else used.delete(slot);
    }
    this.nextSlot = used.size === 0 ? 0 : Math.max(...used) + 1;
    for (let slot = 0; slot < this.nextSlot; slot++) if (!used.has(slot)) this.freeSlots.push(slot);
    for (const entry of loaded.sort((a, b) => a.seq - b.seq)) {
      this.entries.set(entry.key, entry);
      this.byHash.set(entry.h, entry.key);
      this.nextSeq = Math.max(this.nextSeq, entry.seq + 1);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): OutboxEntry | undefined {
    return this.entries.get(key);
  }

  keyOfHash(h: string): string | undefined {
    return this.byHash.get(h);
  }

  /** Keys, oldest write first (a snapshot). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Records that the latest write to `key` is `h`. At capacity the oldest
   * entry is dropped to make room; its key is returned as `evicted`.
   */
  set(key: string, h: string, need = 1): { persisted: Promise<void>; evicted?: string } {
    let evicted: string | undefined;
    const old = this.entries.get(key);
    if (old) {
      this.byHash.delete(old.h);
      this.entries.delete(key);
    } else if (this.entries.size >= this.capacity) {
      evicted = this.entries.keys().next().value as string;
      this.delete(evicted);
    }
    // A new write starts with a fresh delivery state (the old one's confirmations were for another record).
    const entry: OutboxEntry = { key, h, seq: this.nextSeq++, slot: old?.slot ?? this.freeSlots.pop() ?? this.nextSlot++, need: Math.max(1, need), tries: 0, refusals: 0 };
    this.entries.set(key, entry);
    this.byHash.set(h, key);
    const slot: { k: string; h: string; q: number; n?: number } = { k: key, h, q: entry.seq };
    if (entry.need > 1) slot.n = entry.need;
    return { persisted: this.write(entry.slot, JSON.stringify(slot)), evicted };
  }

  /** Drops the entry of `key`; resolves once the slot is freed in the store. */
  delete(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return Promise.resolve();
    this.entries.delete(key);
    this.byHash.delete(entry.h);
    this.freeSlots.push(entry.slot);
    return this.write(entry.slot, "");
  }

  private write(slot: number, value: string): Promise<void> {
    this.dirty.set(slot, value);
    return this.writeDirty();
  }
}

function parseSlot(raw: string | undefined, slot: number): OutboxEntry | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as { k?: unknown; h?: unknown; q?: unknown; n?: unknown };
    if (typeof v.k !== "string" || typeof v.h !== "string" || typeof v.q !== "number") return undefined;
    const need = typeof v.n === "number" && Number.isInteger(v.n) && v.n > 1 ? v.n : 1;
    return { key: v.k, h: v.h, seq: v.q, slot, need, tries: 0, refusals: 0 };
  } catch {
    return undefined;
  }
}
