import { LruMap } from "../../base/bounded-set.js";

/**
 * How much reconciliation work one source may cause here: token buckets
 * refilled continuously over `windowMs`. A source is charged on three
 * buckets at once: its identity, its IP and its address range (/24, /64),
 * so fresh identities, or the next address of the same range, buy nothing.
 * Sizes scale with the store, so an honest peer can always reconcile the
 * whole store about once per window, and a peer sending lying fingerprints
 * or fetching everything again cannot do it repeatedly.
 */
export interface SyncBudgetOptions {
  windowMs: number;
  /** Reconciliation messages answered per window. */
  rounds: number;
  /**
   * Index items scanned per window, as a multiple of (store size + slack);
   * other work counts as the items it is worth: a range read (and
   * compared) or written RANGE_WORK (negentropy.ts), an id looked up
   * LOOKUP_WORK.
   */
  scansPerItem: number;
  /** Records served (fetched) per window, as a multiple of (store size + slack). */
  servesPerItem: number;
  /** Records this server pushes to one peer per window, as a multiple of (store size + slack): one copy of the store. */
  pushesPerItem: number;
  /** An address range (/24, /64) gets this many times the budget of one address (several servers may share one). */
  rangeShare: number;
  /** Added to the store size so that small stores still get a useful budget. */
  slack: number;
  /** Buckets remembered at once (least recently used forgotten first). */
  maxPeers: number;
  /** A reconciliation request identical to one answered for the same source this recently is refused (ms). */
  repeatWindowMs: number;
}

/** A range sync run's limits (ToolDb's `rangeSync` option). */
export interface RangeSyncOptions {
  budget?: Partial<SyncBudgetOptions>;
  /** Reconciliation rounds per run at most (a lying responder cannot keep a run going). */
  maxRounds?: number;
  /**
   * A differing range of fewer items than this is sent as its ids; a larger
   * one is split into 16 fingerprinted buckets (2..32; default 8, the
   * negentropy reference uses 32). Smaller leaves send fewer ids where few
   * differ.
   */
  leafIds?: number;
  /**
   * Index items one reconciliation message of ours reads at first (default:
   * a quarter of the index's cache of recent reads, or 1/100 of a larger
   * store); across a long round trip it grows up to 8 × (link-read-budget.ts).
   */
  readsPerMessage?: number;
  /**
   * Ms from a complete run on a server link we dialed to the next, while the
   * link stays open (±20 %, default 60,000; 0: none): what the relay lost
   * arrives by the next such refresh, by the change feeds (run-schedule.ts).
   */
  refreshMs?: number;
}

export const DEFAULT_SYNC_BUDGET: SyncBudgetOptions = {
  windowMs: 10 * 60_000,
  rounds: 2000,
  scansPerItem: 24,
  servesPerItem: 2,
  pushesPerItem: 1,
  rangeShare: 4,
  slack: 10_000,
  maxPeers: 4096,
  repeatWindowMs: 60_000,
};

/**
 * An id looked up for a peer (a fetched id not served, an offered id), in
 * index items read (the unit of `scans`): an index read, and for a stored
 * record its read and parse. Measured beside RANGE_WORK (negentropy.ts) on
 * a LevelDB store: 3.5–3.8 µs an id never stored, 6 µs and more a stored
 * one, against 0.5–0.8 µs an item read from the index's cache.
 */
export const LOOKUP_WORK = 8;

/**
 * An id a peer's change feed listed, when we run (change-sync.ts): one
 * read of our index to know whether we hold it, charged to the budget for
 * our work on the peer's answers before each page is taken in. A lying
 * feed listing ids without end stops there; an honest run that meets it
 * goes on from its checkpoint at the next run.
 */
export const LISTED_ID_WORK = 1;

/**
 * Scans a record earns back for the peer it came from when it is new here
 * (fetched from it, or pushed by it), up to the bucket's capacity. The
 * budget is sized by this store, the honest work of a run by both: a
 * server holding 1 record in 20 of its peer's did ~12 items of work per
 * record it lacked against ~4 a record its own budget allows, and its runs
 * stopped with the budget "used up" (review of the range-sync cost fix).
 * Only records that verified and joined the index count, and a key once a
 * window (SyncGate), so the credit costs a liar a signed record of a key
 * new here for 32 items (~25 µs) of work, less than its signature check.
 */
export const NEW_RECORD_CREDIT = 32;

export type BudgetKind = "rounds" | "scans" | "serves" | "pushes";
const KINDS: readonly BudgetKind[] = ["rounds", "scans", "serves", "pushes"];

/** The buckets one request is charged to: `id:<address>`, `ip:<ip>`, `net:<range>` (see SyncGate). */
export type BudgetKeys = readonly string[];

interface Bucket {
  tokens: Record<BudgetKind, number>;
  at: number;
  /** A store size the capacity is reckoned by when larger than ours (`sizeAtLeast`). */
  size: number;
}

export class SyncBudget {
  private readonly buckets: LruMap<string, Bucket>;

  constructor(
    readonly options: SyncBudgetOptions,
    private readonly now: () => number,
    private readonly storeSize: () => number,
  ) {
    this.buckets = new LruMap(Math.max(1, options.maxPeers));
  }

  private capacity(key: string, kind: BudgetKind, size = 0): number {
    const share = key.startsWith("net:") ? this.options.rangeShare : 1;
    if (kind === "rounds") return this.options.rounds * share;
    const perItem = kind === "scans" ? this.options.scansPerItem : kind === "serves" ? this.options.servesPerItem : this.options.pushesPerItem;
    return (Math.max(this.storeSize(), size) + this.options.slack) * perItem * share;
  }

  private bucket(key: string): Bucket {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      const refill = Math.max(0, now - bucket.at) / this.options.windowMs;
      for (const kind of KINDS) {
        const cap = this.capacity(key, kind, bucket.size);
        bucket.tokens[kind] = Math.min(cap, bucket.tokens[kind] + refill * cap);
      }
      bucket.at = now;
    } else {
      const tokens = {} as Record<BudgetKind, number>;
      for (const kind of KINDS) tokens[kind] = this.capacity(key, kind);
      bucket = { tokens, at: now, size: 0 };
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  /** The kind of budget one of these buckets has used up, if any. */
  exhausted(keys: BudgetKeys, kinds: readonly BudgetKind[] = ["rounds", "scans", "serves"]): BudgetKind | undefined {
    for (const key of keys) {
      const { tokens } = this.bucket(key);
      for (const kind of kinds) if (tokens[kind] < 1) return kind;
    }
    return undefined;
  }

  /** Records work done for a source, on each of its buckets (may overdraw: the next request is refused until they refill). */
  charge(keys: BudgetKeys, kind: BudgetKind, amount: number): void {
    for (const key of keys) this.bucket(key).tokens[kind] -= amount;
  }

  /** Gives back `amount` of `kind` on each of the source's buckets, never past its capacity. */
  credit(keys: BudgetKeys, kind: BudgetKind, amount: number): void {
    for (const key of keys) {
      const bucket = this.bucket(key);
      bucket.tokens[kind] = Math.min(this.capacity(key, kind, bucket.size), bucket.tokens[kind] + amount);
    }
  }

  /**
   * Reckons these buckets' capacity by a store of `size` items where that is larger than ours (SyncGate.answersSized:
   * the budget for our work on a peer's answers, by the larger of both stores), and adds what that adds to the
   * capacity to the tokens too, as if the bucket had been that size from the start. The size a bucket is reckoned by
   * only grows while it is remembered, so claiming large, then small, then large again is given the difference once.
   */
  sizeAtLeast(keys: BudgetKeys, size: number): void {
    for (const key of keys) {
      const bucket = this.bucket(key);
      if (!(size > bucket.size)) continue;
      for (const kind of KINDS) bucket.tokens[kind] += this.capacity(key, kind, size) - this.capacity(key, kind, bucket.size);
      bucket.size = size;
    }
  }

  /** Units of `kind` the source may still use now: the least any of its buckets holds. */
  remaining(keys: BudgetKeys, kind: BudgetKind): number {
    let least = Infinity;
    for (const key of keys) least = Math.min(least, this.bucket(key).tokens[kind]);
    return Math.max(0, least === Infinity ? 0 : least);
  }
}
