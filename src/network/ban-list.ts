import { LruMap } from "../base/bounded-set.js";

export interface Ban {
  until: number;
  reason: string;
}

export interface BanListOptions {
  /** How long a ban lasts (ms); 0 disables bans. */
  banDuration: number;
  /** Banned identities from one IP after which the IP itself is banned. */
  ipBanAfter: number;
  /** Entries kept at most; the least recently touched are forgotten first. */
  maxBans: number;
}

/**
 * Peers that kept breaking the protocol (dropped for too many strikes, or
 * for malformed frames) are banned for `banDuration`: by identity, so a
 * reconnect under the same key is refused at the handshake, and by IP once
 * `ipBanAfter` offences came from it, so rotating identities does not help.
 * One offence does not ban an IP: many honest users may share it (NAT).
 */
export class BanList {
  private readonly bans: LruMap<string, Ban>;
  private readonly offences: LruMap<string, { count: number; until: number }>;

  constructor(
    private readonly opts: BanListOptions,
    private readonly now: () => number,
  ) {
    const capacity = Math.max(1, opts.maxBans);
    this.bans = new LruMap(capacity);
    this.offences = new LruMap(capacity);
  }

  get enabled(): boolean {
    return this.opts.banDuration > 0;
  }

  /**
   * Records an offence by a peer (its identity when the handshake was done,
   * and its IP). Returns what got banned.
   */
  offence(identity: string | undefined, ip: string | undefined, reason: string): { identity: boolean; ip: boolean } {
    const result = { identity: false, ip: false };
    if (!this.enabled) return result;
    const until = this.now() + this.opts.banDuration;
    if (identity) {
      this.bans.set(`id:${identity}`, { until, reason });
      result.identity = true;
    }
    if (ip) {
      const seen = this.offences.get(ip);
      const count = seen && seen.until > this.now() ? seen.count + 1 : 1;
      this.offences.set(ip, { count, until });
      if (count >= this.opts.ipBanAfter) {
        this.bans.set(`ip:${ip}`, { until, reason: `${count} offences from this IP (last: ${reason})` });
        result.ip = true;
      }
    }
    return result;
  }

  /** The ban on this identity, if one is in force. */
  identity(identity: string): Ban | undefined {
    return this.active(`id:${identity}`);
  }

  /** The ban on this IP, if one is in force. */
  ip(ip: string): Ban | undefined {
    return this.active(`ip:${ip}`);
  }

  private active(key: string): Ban | undefined {
    const ban = this.bans.get(key);
    if (!ban) return undefined;
    if (ban.until > this.now()) return ban;
    this.bans.delete(key);
    return undefined;
  }

  /** Lifts a ban early (operators). */
  lift(kind: "id" | "ip", value: string): boolean {
    if (kind === "ip") this.offences.delete(value);
    return this.bans.delete(`${kind}:${value}`);
  }

  /** Entries held, expired or not (bounded by maxBans). */
  get size(): number {
    return this.bans.size;
  }
}
