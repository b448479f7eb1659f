import type { TimerGroup } from "../base/clock.js";
import { ErrorCode } from "../base/errors.js";
import { addressSite } from "../limits/address-range.js";
import { type Limits, resolveLimits } from "../limits/limits.js";
import { BanList } from "./ban-list.js";
import { CloseCode, type Connection } from "./connection.js";
import { ConnectionGate, type GateHolder, type GateRefusal, type GateTicket, isRefusal } from "./connection-gate.js";
import { type ClientIntakeLimits, resolveClientIntake } from "./client-intake.js";
import { FairIntake, type IntakeLimits, type IntakeSink, type LinkIntake } from "./fair-intake.js";
import { type BudgetedLink, SendBudget } from "./send-budget.js";
import { SocketBudget } from "./socket-budget.js";

/** The guard's per-link state, kept on the adapter's link; the link is its gate ticket's holder. */
export interface GuardedLink extends GateHolder, BudgetedLink {
  connection: Connection;
  chargedIp: string | undefined;
  ticket?: GateTicket;
  intake?: LinkIntake;
}

/** How a link the gate evicted is closed. */
export function evictionRefusal(reason: string): GateRefusal {
  return { code: ErrorCode.CONNECTION_LIMIT, closeCode: CloseCode.OVERLOADED, reason };
}

/**
 * The network adapter's resource manager: connection admission and bans
 * (ConnectionGate, BanList) and the fair, rate-limited message intake
 * (FairIntake). Only servers enforce admission, bans, rates and send
 * budgets; on clients those checks pass. Both take their links' frames in
 * through the fair intake, a client with its own limits (client-intake.ts).
 */
export class LinkGuard {
  readonly limits: Limits;
  readonly bans: BanList;
  readonly gate: ConnectionGate;
  readonly intake: FairIntake;
  /** The limits of `intake`: the server's, or a client's own (client-intake.ts, the `clientIntake` option). */
  readonly intakeLimits: IntakeLimits;
  /** A server: admission, bans, message rates and send budgets apply. */
  readonly enforcing: boolean;
  /** Bytes queued to go out on every link (servers). */
  readonly sends: SendBudget | undefined;
  /** Incoming sockets from accept on (its capacity is set by the Node transports, which can read the open-file limit). */
  readonly sockets = new SocketBudget();

  /** `now`: monotonic time (the intake's token buckets arm its timer; bans and stalls are spans a wall-clock step must not stretch). */
  constructor(enforce: boolean, given: Partial<Limits> | undefined, timers: TimerGroup, now: () => number, clientIntake?: Partial<ClientIntakeLimits>) {
    this.limits = resolveLimits(given);
    this.bans = new BanList(this.limits, now);
    this.gate = new ConnectionGate(this.limits, this.bans);
    this.enforcing = enforce;
    this.intakeLimits = enforce ? this.limits : resolveClientIntake(clientIntake);
    this.intake = new FairIntake(this.intakeLimits, timers, now);
    this.sends = enforce ? new SendBudget(this.limits, timers, now) : undefined;
  }

  /**
   * An incoming link arrived: null when admitted, else the refusal to close
   * it with. A link the gate later pushes out to make room is told by `evicted`.
   */
  admit(link: GuardedLink): GateRefusal | null {
    if (!this.enforcing || link.connection.info.outgoing) return null;
    link.chargedIp = this.limitedIp(link);
    const result = this.gate.admit(link.chargedIp);
    if (isRefusal(result)) return result;
    link.ticket = result;
    result.holder = link;
    return null;
  }

  /** The remote IP when per-IP limits and IP bans apply to it. */
  private limitedIp(link: GuardedLink): string | undefined {
    const ip = link.connection.info.remoteHost;
    return ip && !this.limits.exemptIps.includes(ip) ? ip : undefined;
  }

  /** The address site (/24, /48) of the link's remote IP, for memory many ranges could flush; undefined for exempt IPs. */
  siteOf(link: GuardedLink): string | undefined {
    const ip = this.limitedIp(link);
    return ip === undefined ? undefined : (addressSite(ip) ?? ip);
  }

  /** The link's peer proved it is `clientId` (a server when `claimsServer`): null when it may stay. */
  verify(link: GuardedLink, clientId: string, claimsServer: boolean): GateRefusal | null {
    return link.ticket ? this.gate.verify(link.ticket, clientId, claimsServer) : null;
  }

  /**
   * The intake an established link's frames go through, created with its
   * first frame: a link that stays silent holds none.
   */
  intakeOf(link: GuardedLink, sink: IntakeSink): LinkIntake {
    link.intake ??= this.intake.open(sink);
    return link.intake;
  }

  /** A frame was written to the link. */
  sent(link: GuardedLink): void {
    this.sends?.sent(link);
  }

  /** Null when a frame of `bytes` may be queued on the link, else why the link is dropped instead. */
  mayQueue(link: GuardedLink, bytes: number): string | null {
    return this.sends?.mayQueue(link, bytes) ?? null;
  }

  /** True while the link's requests should wait until it reads its replies. */
  held(link: GuardedLink, outstanding: number): boolean {
    return this.sends?.held(link, outstanding) ?? false;
  }

  release(link: GuardedLink): void {
    if (link.ticket) this.gate.release(link.ticket);
    link.intake?.close();
    this.sends?.remove(link);
  }

  /**
   * The link was dropped for breaking the protocol. Returns a refusal
   * describing the ban when one was imposed.
   */
  offence(link: GuardedLink, clientId: string | undefined, reason: string): { code: ErrorCode; reason: string } | undefined {
    if (!this.enforcing) return undefined;
    const ip = link.connection.info.outgoing ? undefined : this.limitedIp(link);
    const banned = this.bans.offence(clientId, ip, reason);
    if (!banned.identity && !banned.ip) return undefined;
    const what = [banned.identity ? `identity ${clientId}` : "", banned.ip ? `IP ${ip}` : ""].filter(Boolean).join(" and ");
    return { code: ErrorCode.BANNED, reason: `${what} banned for ${Math.round(this.limits.banDuration / 1000)} s: ${reason}` };
  }
}
