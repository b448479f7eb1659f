/**
 * How much reconciliation work one peer may cause here: token buckets per
 * peer address (so a reconnect does not refill them), refilled continuously
 * over `windowMs`. Sizes scale with the store, so an honest peer can always
 * reconcile the whole store about once per window, and a peer sending
 * lying fingerprints or fetching everything again cannot do it repeatedly.
 */
export interface SyncBudgetOptions {
  windowMs: number;
  /** Reconciliation messages answered per window. */
  rounds: number;
  /** Index items scanned per window, as a multiple of (store size + slack). */
  scansPerItem: number;
  /** Records served (fetched) per window, as a multiple of (store size + slack). */
  servesPerItem: number;
  /** Added to the store size so that small stores still get a useful budget. */
  slack: number;
  /** Peers remembered at once (least recently used forgotten first). */
  maxPeers: number;
}

/** A range sync run's limits (ToolDb's `rangeSync` option). */
export interface RangeSyncOptions {
  budget?: Partial<SyncBudgetOptions>;
  /** Reconciliation rounds per run at most (a lying responder cannot keep a run going). */
  maxRounds?: number;
  /**
   * A differing range of fewer items than this is sent as its ids; a larger
   * one is split into 16 fingerprinted buckets (2..32; the negentropy
   * reference uses 32). Smaller leaves send fewer ids where few differ.
   */
  leafIds?: number;
}

export const DEFAULT_SYNC_BUDGET: SyncBudgetOptions = {
  windowMs: 10 * 60_000,
  rounds: 2000,
  scansPerItem: 24,
  servesPerItem: 2,
  slack: 10_000,
  maxPeers: 1024,
};

export type BudgetKind = "rounds" | "scans" | "serves";

interface Bucket {
  tokens: Record<BudgetKind, number>;
  at: number;
}

export class SyncBudget {
  private readonly peers = new Map<string, Bucket>();

  constructor(
    private readonly options: SyncBudgetOptions,
    private readonly now: () => number,
    private readonly storeSize: () => number,
  ) {}

  private capacity(kind: BudgetKind): number {
    const items = this.storeSize() + this.options.slack;
    if (kind === "rounds") return this.options.rounds;
    return items * (kind === "scans" ? this.options.scansPerItem : this.options.servesPerItem);
  }

  private bucket(peer: string): Bucket {
    const now = this.now();
    let bucket = this.peers.get(peer);
    if (bucket) {
      this.peers.delete(peer); // re-inserted below: the map stays in LRU order
      const refill = Math.max(0, now - bucket.at) / this.options.windowMs;
      for (const kind of ["rounds", "scans", "serves"] as const) {
        bucket.tokens[kind] = Math.min(this.capacity(kind), bucket.tokens[kind] + refill * this.capacity(kind));
      }
      bucket.at = now;
    } else {
      bucket = { tokens: { rounds: this.capacity("rounds"), scans: this.capacity("scans"), serves: this.capacity("serves") }, at: now };
      if (this.peers.size >= this.options.maxPeers) this.peers.delete(this.peers.keys().next().value as string);
    }
    this.peers.set(peer, bucket);
    return bucket;
  }

  /** The kind of budget this peer has used up, if any. */
  exhausted(peer: string): BudgetKind | undefined {
    const { tokens } = this.bucket(peer);
    if (tokens.rounds < 1) return "rounds";
    if (tokens.scans <= 0) return "scans";
    if (tokens.serves <= 0) return "serves";
    return undefined;
  }

  /** Records work done for `peer` (may overdraw: the next request is refused until it refills). */
  charge(peer: string, kind: BudgetKind, amount: number): void {
    this.bucket(peer).tokens[kind] -= amount;
  }

  /** Records this peer may still be served now. */
  remaining(peer: string, kind: BudgetKind): number {
    return Math.max(0, this.bucket(peer).tokens[kind]);
  }
}
