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
  /**
   * `need` servers confirmed it, none of them one this client trusts
   * (server-trust.ts): kept until a trusted server confirms it, sent only to
   * trusted servers, and the first dropped at capacity (persisted).
   */
  met?: boolean;
  /** A server this client trusts confirmed it (in memory only). */
  trusted?: boolean;
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
  /** Keys of the entries that are `met`, in the order they became so. */
  private readonly metKeys = new Set<string>();
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private nextSeq = 0;
  private dirty = new Map<number, string>();
  /** The last slot write asked for: once it settled, every earlier one has too. */
  private lastWrite: Promise<void> = Promise.resolve();
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
      if (entry.met) this.metKeys.add(entry.key);
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

  /** Entries that are `met` (confirmed by servers this client does not trust only). */
  get metCount(): number {
    return this.metKeys.size;
  }

  /**
   * Records that the latest write to `key` is `h`. At capacity an entry is
   * dropped to make room: the one `met` longest if any (its key returned as
   * `dropped`: servers confirmed it), else the oldest (returned as `evicted`:
   * no server confirmed it).
   */
  set(key: string, h: string, need = 1): { persisted: Promise<void>; evicted?: string; dropped?: string } {
    let evicted: string | undefined;
    let dropped: string | undefined;
    const old = this.entries.get(key);
    if (old) {
      this.byHash.delete(old.h);
      this.entries.delete(key);
      this.metKeys.delete(key);
    } else if (this.entries.size >= this.capacity) {
      dropped = this.metKeys.values().next().value;
      if (dropped === undefined) evicted = this.entries.keys().next().value as string;
      this.delete((dropped ?? evicted)!);
    }
    // A new write starts with a fresh delivery state (the old one's confirmations were for another record).
    const entry: OutboxEntry = { key, h, seq: this.nextSeq++, slot: old?.slot ?? this.freeSlots.pop() ?? this.nextSlot++, need: Math.max(1, need), tries: 0, refusals: 0 };
    this.entries.set(key, entry);
    this.byHash.set(h, key);
    const slot = slotOf(entry);
    return { persisted: this.write(entry.slot, JSON.stringify(slot)), evicted, dropped };
  }

  /** `need` servers confirmed the entry, none trusted: it is kept as `met` (persisted, so a restart sends it to trusted servers only). */
  markMet(entry: OutboxEntry): Promise<void> {
    if (entry.met || this.entries.get(entry.key) !== entry) return Promise.resolve();
    entry.met = true;
    this.metKeys.add(entry.key);
    return this.write(entry.slot, JSON.stringify(slotOf(entry)));
  }

  /** Drops the entry of `key`; resolves once the slot is freed in the store. */
  delete(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return Promise.resolve();
    this.entries.delete(key);
    this.byHash.delete(entry.h);
    this.metKeys.delete(key);
    this.freeSlots.push(entry.slot);
    return this.write(entry.slot, "");
  }

  /** Resolves once every slot write asked for so far has ended (stored or failed). */
  settled(): Promise<void> {
    return this.lastWrite.catch(() => undefined);
  }

  private write(slot: number, value: string): Promise<void> {
    this.dirty.set(slot, value);
    return (this.lastWrite = this.writeDirty());
  }
}

/** A slot's JSON: key, hash, order, `need` when over 1, `p` when met. */
function slotOf(entry: OutboxEntry): { k: string; h: string; q: number; n?: number; p?: 1 } {
  const slot: { k: string; h: string; q: number; n?: number; p?: 1 } = { k: entry.key, h: entry.h, q: entry.seq };
  if (entry.need > 1) slot.n = entry.need;
  if (entry.met) slot.p = 1;
  return slot;
}

function parseSlot(raw: string | undefined, slot: number): OutboxEntry | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as { k?: unknown; h?: unknown; q?: unknown; n?: unknown; p?: unknown };
    if (typeof v.k !== "string" || typeof v.h !== "string" || typeof v.q !== "number") return undefined;
    const need = typeof v.n === "number" && Number.isInteger(v.n) && v.n > 1 ? v.n : 1;
    return { key: v.k, h: v.h, seq: v.q, slot, need, tries: 0, refusals: 0, ...(v.p === 1 ? { met: true } : {}) };
  } catch {
    return undefined;
  }
}
