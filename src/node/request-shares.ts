/**
 * Who holds the entries of the table of pending requests (pending-requests.ts):
 * requests a server forwarded for a peer, and its catch-up gets to a peer,
 * are held for that peer and for the address site (IPv4 /24, IPv6 /48: the
 * grouping the link gate uses, `addressSite`) its link is charged to. Each
 * may hold a share of the table, and when the table is full the entry given
 * up is the oldest of whoever holds the most, not the oldest of all.
 *
 * Shares:
 * - a client holds 1/8 of the table; a server that proved its identity on
 *   the link 1/2, since it forwards for its own clients (a hub held to 1/8
 *   stopped forwarding past its neighbour beyond ~170 gets a second for
 *   missing keys, each waiting the full 3 s);
 * - the requests of one site together 1/4, and up to 1/2 for a proven
 *   server's (servers behind one NAT share it). "Proven" costs nothing, so
 *   the site, not the identity, is what bounds one host: a site counts as
 *   one holder however many identities or IPv6 addresses it uses (keyed by
 *   the exact IP, an IPv6 host had a share for every address, and many small
 *   holders made an honest hub the largest, the one evicted).
 *
 * The largest holder is kept track of as entries come and go (GroupCounts,
 * as GroupedBoundedSet does; that set itself does not fit: it evicts within
 * a group instead of refusing, holds a value in one group only, and has no
 * removal), not found by scanning every holder on each add to a full table.
 *
 * An outside check kept the one table (4,096 entries, oldest evicted) full:
 * a client sending 3,800 gets a second for missing keys made 12 of 17 honest
 * forwarded gets come back empty, and 70 unproven "legacy servers" that
 * never answered a get had the server send 700,000 catch-up gets in 15 s
 * (each eviction freed a worker that sent the next get).
 */
import type { PeerSession } from "../network/peer-session.js";
import { addressSite } from "../limits/address-range.js";
import { GroupCounts } from "../base/group-counts.js";

/** Whom a pending request is held for. */
export interface RequestOwner {
  /** The peer's client id. */
  readonly peer: string;
  /** The address site (/24, /48) of the IP its link is charged to (none when exempt, or dialed out). */
  readonly site?: string | undefined;
  /** A server that proved its identity on its link (a larger share). */
  readonly server?: boolean;
}

/** Whom a request forwarded for `from` (or a catch-up get to it) is held for: the peer, and the address site its link is charged to. */
export function ownerOf(from: PeerSession): RequestOwner {
  const ip = from.chargedIp;
  return { peer: from.clientId, site: ip === undefined ? undefined : (addressSite(ip) ?? ip), server: from.provenServer };
}

/** Fraction of the table one client may hold. */
const CLIENT_SHARE = 1 / 8;
/** Fraction of the table one proven server may hold (and a site, for a proven server's requests). */
const SERVER_SHARE = 1 / 2;
/** Fraction of the table the peers of one address site may hold together. */
const SITE_SHARE = 1 / 4;

export class RequestShares {
  /** Ids held per peer (`p:`) and per address site (`s:`), oldest first. */
  private readonly held = new Map<string, Set<string>>();
  /** How many each holder holds, and who holds the most. */
  private readonly counts = new GroupCounts<string>();
  /** Requests one client may hold. */
  readonly perPeer: number;
  /** Requests one proven server may hold. */
  readonly perServer: number;
  /** Requests the peers of one site may hold together (a proven server's may bring it to `perServer`). */
  readonly perSite: number;

  constructor(capacity: number) {
    this.perPeer = Math.max(1, Math.floor(capacity * CLIENT_SHARE));
    this.perServer = Math.max(1, Math.floor(capacity * SERVER_SHARE));
    this.perSite = Math.max(1, Math.floor(capacity * SITE_SHARE));
  }

  /** What `owner` may hold, alone and with its site. */
  limits(owner: RequestOwner): { peer: number; site: number } {
    return owner.server ? { peer: this.perServer, site: Math.max(this.perSite, this.perServer) } : { peer: this.perPeer, site: this.perSite };
  }

  /** How many requests are held for `owner`'s peer and site. */
  holding(owner: RequestOwner): { peer: number; site: number } {
    return { peer: this.held.get(`p:${owner.peer}`)?.size ?? 0, site: owner.site === undefined ? 0 : (this.held.get(`s:${owner.site}`)?.size ?? 0) };
  }

  /** True when `owner` may hold one more request. */
  mayAdd(owner: RequestOwner): boolean {
    const limit = this.limits(owner);
    const now = this.holding(owner);
    return now.peer < limit.peer && (owner.site === undefined || now.site < limit.site);
  }

  add(id: string, owner: RequestOwner): void {
    this.hold(`p:${owner.peer}`, id);
    if (owner.site !== undefined) this.hold(`s:${owner.site}`, id);
  }

  remove(id: string, owner: RequestOwner): void {
    this.release(`p:${owner.peer}`, id);
    if (owner.site !== undefined) this.release(`s:${owner.site}`, id);
  }

  /** The oldest request of the peer or site that holds the most (the first to reach that count); undefined when none is held for anyone. */
  heaviest(): string | undefined {
    const holder = this.counts.largest();
    return holder === undefined ? undefined : this.held.get(holder)?.values().next().value;
  }

  private hold(holder: string, id: string): void {
    let ids = this.held.get(holder);
    if (!ids) this.held.set(holder, (ids = new Set()));
    if (ids.has(id)) return;
    ids.add(id);
    this.counts.increment(holder);
  }

  private release(holder: string, id: string): void {
    const ids = this.held.get(holder);
    if (!ids?.delete(id)) return;
    this.counts.decrement(holder);
    if (ids.size === 0) this.held.delete(holder);
  }
}
