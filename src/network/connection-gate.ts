import { ErrorCode } from "../base/errors.js";
import type { Limits } from "../limits/limits.js";
import type { BanList } from "./ban-list.js";
import { CloseCode } from "./connection.js";

export interface GateRefusal {
  code: ErrorCode;
  closeCode: number;
  reason: string;
}

/** One admitted incoming link; `release` is idempotent. */
export interface GateTicket {
  readonly ip: string | undefined;
  verified: boolean;
  released: boolean;
  /** Closes the link when the gate evicts it to make room (set by the caller). */
  holder?: { evicted(reason: string): void };
}

type GateLimits = Pick<Limits, "maxConnections" | "maxUnverifiedConnections" | "maxConnectionsPerIp">;

/**
 * Admission of incoming links, as libp2p's connection gater: a link is
 * checked when it arrives (banned IP, links per IP, links still in the
 * handshake) and again when its handshake succeeds (banned identity,
 * verified links). Unverified and verified links are counted apart, so a
 * flood of unfinished handshakes cannot push out established peers. When
 * the handshake slots are full, the oldest unfinished handshake is evicted
 * rather than the newcomer refused: a flood then cannot hold every slot
 * until its handshakes time out, and an honest peer, which completes its
 * handshake in milliseconds, gets through.
 */
export class ConnectionGate {
  private verified = 0;
  /** Unverified tickets, oldest first. */
  private readonly pending = new Set<GateTicket>();
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly limits: GateLimits,
    private readonly bans: BanList,
  ) {}

  get counts(): { verified: number; unverified: number; ips: number } {
    return { verified: this.verified, unverified: this.pending.size, ips: this.perIp.size };
  }

  /** A new incoming link: a ticket when admitted, else why not. */
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
    const ticket: GateTicket = { ip, verified: false, released: false };
    this.pending.add(ticket);
    if (ip) this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    return ticket;
  }

  /** The link's handshake succeeded as `identity`: null when it may stay, else why not. */
  verify(ticket: GateTicket, identity: string): GateRefusal | null {
    const ban = this.bans.identity(identity);
    if (ban) return { code: ErrorCode.BANNED, closeCode: CloseCode.BANNED, reason: `identity banned: ${ban.reason}` };
    if (ticket.verified || ticket.released) return null;
    if (this.verified >= this.limits.maxConnections) return limit(`too many connections (${this.limits.maxConnections})`);
    ticket.verified = true;
    this.pending.delete(ticket);
    this.verified++;
    return null;
  }

  release(ticket: GateTicket): void {
    if (ticket.released) return;
    ticket.released = true;
    if (ticket.verified) this.verified--;
    else this.pending.delete(ticket);
    if (ticket.ip) {
      const n = (this.perIp.get(ticket.ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ticket.ip);
      else this.perIp.set(ticket.ip, n);
    }
  }
}

function limit(reason: string): GateRefusal {
  return { code: ErrorCode.CONNECTION_LIMIT, closeCode: CloseCode.OVERLOADED, reason };
}

export function isRefusal(x: GateTicket | GateRefusal): x is GateRefusal {
  return "code" in x;
}
