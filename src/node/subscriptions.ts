/**
 * Server side: which peers subscribed to which keys. Entries belong to a
 * live session and are dropped when it closes (clients re-subscribe on
 * reconnect), and each peer has a cap, so the table is bounded.
 */
export class RemoteSubscriptions {
  private readonly byKey = new Map<string, Set<string>>();
  private readonly byPeer = new Map<string, Set<string>>();

  private pairs = 0;

  constructor(
    readonly maxPerPeer: number,
    /** Subscriptions of all peers together. */
    readonly maxTotal = Infinity,
  ) {}

  /** "ok", or which cap refused it: the peer's own, or the total. */
  add(peer: string, key: string): "ok" | "peer-cap" | "total-cap" {
    let keys = this.byPeer.get(peer);
    if (keys?.has(key)) return "ok";
    if ((keys?.size ?? 0) >= this.maxPerPeer) return "peer-cap";
    if (this.pairs >= this.maxTotal) return "total-cap";
    if (!keys) this.byPeer.set(peer, (keys = new Set()));
    keys.add(key);
    this.pairs++;
    let peers = this.byKey.get(key);
    if (!peers) this.byKey.set(key, (peers = new Set()));
    peers.add(peer);
    return "ok";
  }

  /** Subscriptions held, all peers (a peer subscribed to a key counts once). */
  get total(): number {
    return this.pairs;
  }

  subscribers(key: string): ReadonlySet<string> | undefined {
    return this.byKey.get(key);
  }

  dropPeer(peer: string): void {
    const keys = this.byPeer.get(peer);
    if (!keys) return;
    this.byPeer.delete(peer);
    this.pairs -= keys.size;
    for (const key of keys) {
      const peers = this.byKey.get(key);
      peers?.delete(peer);
      if (peers && peers.size === 0) this.byKey.delete(key);
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  clear(): void {
    this.byKey.clear();
    this.byPeer.clear();
    this.pairs = 0;
  }
}
