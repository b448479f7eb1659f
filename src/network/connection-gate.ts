import { ErrorCode } from "../base/errors.js";
import { addressRange } from "../limits/address-range.js";
import type { Limits } from "../limits/limits.js";
import type { BanList } from "./ban-list.js";
import { CloseCode } from "./connection.js";

export interface GateRefusal {
  code: ErrorCode;
  closeCode: number;
  reason: string;
}

/** What a link is worth keeping when the slots run out: the lowest is evicted first. */
export const Standing = {
  /** Not a proven server, and no useful traffic lately. */
  Idle: 0,
  /** Not a proven server, but it used the database lately (a client at work). */
  Active: 1,
  /** A server that proved its identity on this link. */
  ProvenServer: 2,
} as const;
export type Standing = (typeof Standing)[keyof typeof Standing];

/** The link behind a ticket, as the gate sees it (set by the caller). */
export interface GateHolder {
  /** Closes the link: the gate pushed it out to make room. */
  evicted(reason: string): void;
  standing(): Standing;
  /** Idle or Active, also for a proven server (one beyond the servers kept is weighed as a client). */
  activity(): Standing;
}

/** One admitted incoming link; `release` is idempotent. */
export interface GateTicket {
  readonly ip: string | undefined;
  /** The address range (/24, /64) crowding is counted by; undefined for exempt IPs (each such link stands alone). */
  readonly range: string | undefined;
  verified: boolean;
  released: boolean;
  /** Order in which handshakes succeeded: among equals the youngest link is evicted first. */
  order: number;
  holder?: GateHolder;
}

type GateLimits = Pick<Limits, "maxConnections" | "maxUnverifiedConnections" | "maxConnectionsPerIp" | "serverSlotShare">;

/**
 * Admission of incoming links, as libp2p's connection gater and connection
 * manager: a link is checked when it arrives (banned IP, links per IP,
 * links still in the handshake) and again when its handshake succeeds
 * (banned identity, verified links). Unverified and verified links are
 * counted apart, so a flood of unfinished handshakes cannot push out
 * established peers; when the handshake slots are full, the oldest
 * unfinished handshake is evicted rather than the newcomer refused.
 *
 * When the verified slots are full, a newcomer takes the slot of the link
 * least worth keeping, in this order (the connection manager's "trim" and
 * hyperswarm's firewall are the models):
 *  1. links that are not proven servers and were idle lately, from the most
 *     crowded address range (/24, /64) first, the youngest of it first;
 *  2. then links of clients at work, only from a range more crowded than
 *     the newcomer's (youngest of the most crowded first): a flood from a
 *     few ranges cannot hold every slot by sending cheap messages;
 *  3. proven servers are never evicted to make room, up to the number of
 *     slots kept for servers (`serverSlots`) and a quarter of it per address
 *     range, oldest first. "Proven" only means the peer holds the key it
 *     named, which costs nothing: past those bounds a proven server is
 *     weighed as a client (idle or at work), so strangers that say they are
 *     servers cannot hold every slot (review: 32 such links from one /24
 *     locked every client out).
 * A share of the slots (`serverSlotShare`) is kept for links whose
 * handshake says they are servers: other newcomers may only take them by
 * evicting. So a new client is never refused while an idle, unproven link
 * holds a slot.
 */
export class ConnectionGate {
  private verifiedCount = 0;
  private verifications = 0;
  /** Unverified tickets, oldest first. */
  private readonly pending = new Set<GateTicket>();
  /** Verified tickets. */
  private readonly established = new Set<GateTicket>();
  private readonly perIp = new Map<string, number>();
  /** Verified links per address range. */
  private readonly perRange = new Map<string, number>();

  constructor(
    private readonly limits: GateLimits,
    private readonly bans: BanList,
  ) {}

  get counts(): { verified: number; unverified: number; ips: number } {
    return { verified: this.verifiedCount, unverified: this.pending.size, ips: this.perIp.size };
  }

  /** Slots of `maxConnections` kept for servers. */
  get serverSlots(): number {
    return Math.floor(this.limits.maxConnections * this.limits.serverSlotShare);
  }

  /** A new incoming link from `ip` (undefined: exempt from per-IP limits): a ticket when admitted, else why not. */
  admit(ip: string | undefined): GateTicket | GateRefusal {
    const ban = ip ? this.bans.ip(ip) : undefined;
    if (ban) return { code: ErrorCode.BANNED, closeCode: CloseCode.BANNED, reason: `IP banned: ${ban.reason}` };
    if (ip && (this.perIp.get(ip) ?? 0) >= this.limits.maxConnectionsPerIp) {
      return limit(`too many links from ${ip} (${this.limits.maxConnectionsPerIp})`);
    }
    if (this.limits.maxUnverifiedConnections < 1) return limit("no links in handshake allowed (maxUnverifiedConnections 0)");
    while (this.pending.size >= this.limits.maxUnverifiedConnections) {
      const oldest = this.pending.values().next().value as GateTicket;
      this.release(oldest);
      oldest.holder?.evicted(`evicted: too many links in handshake (${this.limits.maxUnverifiedConnections}), oldest first`);
    }
    const ticket: GateTicket = { ip, range: ip ? addressRange(ip) : undefined, verified: false, released: false, order: 0 };
    this.pending.add(ticket);
    if (ip) this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    return ticket;
  }

  /** The link's handshake succeeded as `identity`: null when it may stay, else why not. */
  verify(ticket: GateTicket, identity: string, claimsServer = false): GateRefusal | null {
    const ban = this.bans.identity(identity);
    if (ban) return { code: ErrorCode.BANNED, closeCode: CloseCode.BANNED, reason: `identity banned: ${ban.reason}` };
    if (ticket.verified || ticket.released) return null;
    const max = this.limits.maxConnections;
    const cap = claimsServer ? max : max - this.serverSlots;
    if (this.verifiedCount >= cap) {
      const victim = this.victim(ticket);
      if (!victim) {
        const kept = cap < max ? `, ${max - cap} kept for servers` : "";
        return limit(`too many connections (${max}${kept}); no idle link to evict`);
      }
      const crowd = victim.range ? ` (one of ${this.perRange.get(victim.range)} links from ${victim.range})` : "";
      this.release(victim);
      victim.holder?.evicted(`evicted to make room at the connection limit (${max}): the link least worth keeping${crowd}`);
    }
    this.pending.delete(ticket);
    ticket.verified = true;
    ticket.order = ++this.verifications;
    this.established.add(ticket);
    this.verifiedCount++;
    if (ticket.range) this.perRange.set(ticket.range, (this.perRange.get(ticket.range) ?? 0) + 1);
    return null;
  }

  /** The verified link least worth keeping that `newcomer` may take the slot of (see the class comment), if any. */
  private victim(newcomer: GateTicket): GateTicket | undefined {
    const crowding = (t: GateTicket) => (t.range ? (this.perRange.get(t.range) ?? 0) : 0);
    const newcomerCrowding = newcomer.range ? (this.perRange.get(newcomer.range) ?? 0) + 1 : 1;
    const kept = this.keptServers();
    let best: GateTicket | undefined;
    let bestKey: [number, number, number] | undefined;
    for (const t of this.established) {
      if (kept.has(t)) continue;
      let standing = t.holder?.standing() ?? Standing.Idle;
      if (standing === Standing.ProvenServer) standing = t.holder?.activity() ?? Standing.Idle;
      const crowd = crowding(t);
      if (standing === Standing.Active && crowd <= newcomerCrowding) continue;
      // Idle before active; then the most crowded range; then the youngest.
      const key: [number, number, number] = [standing === Standing.Idle ? 1 : 0, crowd, t.order];
      if (!bestKey || compare(key, bestKey) > 0) {
        best = t;
        bestKey = key;
      }
    }
    return best;
  }

  /**
   * The proven servers never evicted: the oldest, at most `serverSlots` in
   * all and a quarter of that per address range (exempt addresses stand alone).
   */
  private keptServers(): Set<GateTicket> {
    const kept = new Set<GateTicket>();
    const perRange = new Map<string, number>();
    const rangeCap = Math.max(1, Math.floor(this.serverSlots / 4));
    // `established` iterates in the order handshakes succeeded: oldest first.
    for (const t of this.established) {
      if (kept.size >= this.serverSlots) break;
      if (t.holder?.standing() !== Standing.ProvenServer) continue;
      const inRange = t.range === undefined ? 0 : (perRange.get(t.range) ?? 0);
      if (inRange >= rangeCap) continue;
      if (t.range !== undefined) perRange.set(t.range, inRange + 1);
      kept.add(t);
    }
    return kept;
  }

  release(ticket: GateTicket): void {
    if (ticket.released) return;
    ticket.released = true;
    if (ticket.verified) {
      this.verifiedCount--;
      this.established.delete(ticket);
      if (ticket.range) decrement(this.perRange, ticket.range);
    } else this.pending.delete(ticket);
    if (ticket.ip) decrement(this.perIp, ticket.ip);
  }
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

function limit(reason: string): GateRefusal {
  return { code: ErrorCode.CONNECTION_LIMIT, closeCode: CloseCode.OVERLOADED, reason };
}

export function isRefusal(x: GateTicket | GateRefusal): x is GateRefusal {
  return "code" in x;
}
