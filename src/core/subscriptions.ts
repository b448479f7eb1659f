/**
 * Server side: which peers subscribed to which keys. Entries belong to a
 * live session and are dropped when it closes (clients re-subscribe on
 * reconnect), and each peer has a cap, so the table is bounded.
 */
export class RemoteSubscriptions {
  private readonly byKey = new Map<string, Set<string>>();
  private readonly byPeer = new Map<string, Set<string>>();

  constructor(readonly maxPerPeer: number) {}

  /** Returns false when the peer is at its cap. */
  add(peer: string, key: string): boolean {
    let keys = this.byPeer.get(peer);
    if (!keys) this.byPeer.set(peer, (keys = new Set()));
    if (keys.has(key)) return true;
    if (keys.size >= this.maxPerPeer) return false;
    keys.add(key);
    let peers = this.byKey.get(key);
    if (!peers) this.byKey.set(key, (peers = new Set()));
    peers.add(peer);
    return true;
  }

  subscribers(key: string): ReadonlySet<string> | undefined {
    return this.byKey.get(key);
  }

  dropPeer(peer: string): void {
    const keys = this.byPeer.get(peer);
    if (!keys) return;
    this.byPeer.delete(peer);
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
  }
}
