/**
 * Server side: which peers subscribed to which keys. Entries belong to a
 * live session and are dropped when it closes (clients re-subscribe on
 * reconnect), and each peer has a cap, so the table is bounded.
 *
 * When the total is reached, a peer holding fewer subscriptions than the
 * peer holding the most takes one of that peer's (its oldest): a few
 * identities that filled the table cannot keep everyone else's
 * subscriptions out (found in review: 4 identities at their per-peer cap
 * left a new client's subscribe unanswered).
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

  /**
   * "ok", or which cap refused it: the peer's own, or the total. `dropped`
   * hears of a subscription taken from the peer that held the most, to make room.
   */
  add(peer: string, key: string, dropped?: (peer: string, key: string) => void): "ok" | "peer-cap" | "total-cap" {
    let keys = this.byPeer.get(peer);
    if (keys?.has(key)) return "ok";
    if ((keys?.size ?? 0) >= this.maxPerPeer) return "peer-cap";
    if (this.pairs >= this.maxTotal && !this.makeRoomFor(keys?.size ?? 0, dropped)) return "total-cap";
    if (!keys) this.byPeer.set(peer, (keys = new Set()));
    keys.add(key);
    this.pairs++;
    let peers = this.byKey.get(key);
    if (!peers) this.byKey.set(key, (peers = new Set()));
    peers.add(peer);
    return "ok";
  }

  /** Drops the oldest subscription of the peer holding the most, if it holds more than `held` + 1. */
  private makeRoomFor(held: number, dropped?: (peer: string, key: string) => void): boolean {
    let heaviest: string | undefined;
    let most = held + 1;
    for (const [peer, keys] of this.byPeer) {
      if (keys.size > most) {
        heaviest = peer;
        most = keys.size;
      }
    }
    if (heaviest === undefined) return false;
    const keys = this.byPeer.get(heaviest)!;
    const oldest = keys.values().next().value as string;
    this.remove(heaviest, keys, oldest);
    dropped?.(heaviest, oldest);
    return true;
  }

  private remove(peer: string, keys: Set<string>, key: string): void {
    keys.delete(key);
    if (keys.size === 0) this.byPeer.delete(peer);
    this.pairs--;
    const peers = this.byKey.get(key);
    peers?.delete(peer);
    if (peers && peers.size === 0) this.byKey.delete(key);
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
