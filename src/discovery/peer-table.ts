/**
 * The peers already reported for one topic, so each (host:port) is reported
 * once. An entry not re-seen within `ttl` is dropped, so a peer that comes
 * back later is reported again; `forget()` does the same on demand.
 */
export interface PeerAddress {
  host: string;
  port: number;
}

export class PeerTable {
  private readonly lastSeen = new Map<string, number>();
  /** Peers excluded from size() (our own announces). */
  private readonly selfKeys = new Set<string>();

  /** `capacity` bounds memory when a topic is flooded; past it new peers are ignored. */
  constructor(
    private readonly ttl: number,
    private readonly capacity = 1000,
  ) {}

  static key(host: string, port: number): string {
    return `${host}:${port}`;
  }

  /** Records a sighting; true when the peer is new (to be reported), false when known or full. */
  see(peer: PeerAddress, now: number, self = false): boolean {
    const key = PeerTable.key(peer.host, peer.port);
    const isNew = !this.lastSeen.has(key);
    if (isNew && this.lastSeen.size >= this.capacity) return false;
    this.lastSeen.set(key, now);
    if (self) this.selfKeys.add(key);
    return isNew;
  }

  forget(host: string, port: number): boolean {
    const key = PeerTable.key(host, port);
    this.selfKeys.delete(key);
    return this.lastSeen.delete(key);
  }

  /** Drops entries not seen since now - ttl. */
  expire(now: number): void {
    for (const [key, seen] of this.lastSeen) {
      if (now - seen > this.ttl) {
        this.lastSeen.delete(key);
        this.selfKeys.delete(key);
      }
    }
  }

  /** Known peers other than ourselves. */
  get size(): number {
    return this.lastSeen.size - this.selfKeys.size;
  }

  list(): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const key of this.lastSeen.keys()) {
      if (this.selfKeys.has(key)) continue;
      const i = key.lastIndexOf(":");
      out.push({ host: key.slice(0, i), port: Number(key.slice(i + 1)) });
    }
    return out;
  }

  clear(): void {
    this.lastSeen.clear();
    this.selfKeys.clear();
  }
}
