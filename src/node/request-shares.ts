/**
 * Who holds the entries of the table of pending requests (pending-requests.ts):
 * requests a server forwarded for a peer, and its catch-up gets to a peer,
 * are held for that peer and for the IP its link is charged to. Each may
 * hold a share of the table, and when the table is full the entry given up
 * is the oldest of whoever holds the most, not the oldest of all.
 *
 * An outside check kept the one table (4,096 entries, oldest evicted) full:
 * a client sending 3,800 gets a second for missing keys made 12 of 17 honest
 * forwarded gets come back empty, and 70 unproven "legacy servers" that
 * never answered a get had the server send 700,000 catch-up gets in 15 s
 * (each eviction freed a worker that sent the next get).
 */
import type { PeerSession } from "../network/peer-session.js";

/** Whom a pending request is held for. */
export interface RequestOwner {
  /** The peer's client id. */
  readonly peer: string;
  /** The IP its link is charged to (none when exempt, or dialed out). */
  readonly ip?: string | undefined;
}

/** Whom a request forwarded for `from` (or a catch-up get to it) is held for: the peer, and the IP its link is charged to. */
export function ownerOf(from: PeerSession): RequestOwner {
  return { peer: from.clientId, ip: from.chargedIp };
}

/** Fraction of the table one peer may hold. */
const PEER_SHARE = 1 / 8;
/** Fraction of the table one IP's peers may hold together. */
const IP_SHARE = 1 / 4;

export class RequestShares {
  /** Ids held per peer (`p:`) and per IP (`i:`), oldest first. */
  private readonly held = new Map<string, Set<string>>();
  readonly perPeer: number;
  readonly perIp: number;

  constructor(capacity: number) {
    this.perPeer = Math.max(1, Math.floor(capacity * PEER_SHARE));
    this.perIp = Math.max(1, Math.floor(capacity * IP_SHARE));
  }

  /** True when `owner` may hold one more request. */
  mayAdd(owner: RequestOwner): boolean {
    if ((this.held.get(`p:${owner.peer}`)?.size ?? 0) >= this.perPeer) return false;
    return owner.ip === undefined || (this.held.get(`i:${owner.ip}`)?.size ?? 0) < this.perIp;
  }

  add(id: string, owner: RequestOwner): void {
    this.hold(`p:${owner.peer}`, id);
    if (owner.ip !== undefined) this.hold(`i:${owner.ip}`, id);
  }

  remove(id: string, owner: RequestOwner): void {
    this.release(`p:${owner.peer}`, id);
    if (owner.ip !== undefined) this.release(`i:${owner.ip}`, id);
  }

  /** The oldest request of the peer or IP that holds the most; undefined when none is held for anyone. */
  heaviest(): string | undefined {
    let most: Set<string> | undefined;
    for (const ids of this.held.values()) if (!most || ids.size > most.size) most = ids;
    return most?.values().next().value;
  }

  private hold(key: string, id: string): void {
    let ids = this.held.get(key);
    if (!ids) this.held.set(key, (ids = new Set()));
    ids.add(id);
  }

  private release(key: string, id: string): void {
    const ids = this.held.get(key);
    if (!ids) return;
    ids.delete(id);
    if (ids.size === 0) this.held.delete(key);
  }
}
