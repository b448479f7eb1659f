import type { RecordShed, ShedAsks } from "./intake-shed.js";
import type { TimerHandle } from "../base/clock.js";
import type { ErrorCode } from "../base/errors.js";
import type { PeerRecord, PingMessage, PongMessage } from "../records/messages.js";
import type { Connection, ConnectionHandler } from "./connection.js";
import type { GateTicket, Standing } from "./connection-gate.js";
import type { DialTarget } from "./dial-target.js";
import type { Dispatched, IntakeSink, LinkIntake } from "./fair-intake.js";
import type { GuardedLink } from "./link-guard.js";
import type { PeerSession } from "./peer-session.js";
import type { BudgetedLink } from "./send-budget.js";

/** The state of a proving handshake on a link, until its session opens (see handshake.ts). */
export interface Challenge {
  /** The fresh nonce the peer must sign. */
  nonce?: string;
  /** Outgoing links: the record our ping carried (our own proof signs it). */
  own?: PeerRecord;
  /** Incoming links: the peer's checked ping, whose session opens once its proof arrives. */
  ping?: PingMessage;
  /** Outgoing links: the checked pong, whose session opens on the other side's ack of our proof. */
  pong?: { message: PongMessage; record: PeerRecord };
}

/** What a link calls back into (its LinkTable). */
export interface LinkOwner {
  /** The link's connection events. */
  frameArrived(link: Link, frame: string): void;
  transportRefused(link: Link, code: ErrorCode, reason: string): void;
  linkClosed(link: Link, code: number, reason: string): void;
  linkRevived(link: Link, silentMs: number): void;
  /** A frame of an established link, let through by the intake. */
  dispatchFrame(link: Link, frame: string): Dispatched;
  /** `frame`, one of the link's frames, found no room in the intake (see IntakeSink.overflow). */
  overflowed(link: Link, frame: string, allLinks: boolean): void;
  /** The intake's queues are full and this link holds the most (see IntakeSink.crowded). */
  crowded(link: Link): void;
  /** The connection gate pushed the link out to make room. */
  evicted(link: Link, reason: string): void;
  /** What the link is worth keeping when slots run out. */
  standing(link: Link): Standing;
  /** Its use of the database lately, whatever its role: Idle or Active. */
  activity(link: Link): Standing;
  /** A frame was written to the link. */
  frameSent(link: Link): void;
  /** True while the link's requests should wait for it to read its replies. */
  held(link: Link, outstanding: number): boolean;
  /** False when a frame of `bytes` would take the link past what it may hold unread (the link is dropped). */
  mayQueue(link: Link, bytes: number): boolean;
  /** The send budget drops the link. */
  overBudget(link: Link, reason: string, stalled: boolean): void;
}

/**
 * One link of a LinkTable, from `attach` to its close. A server holds
 * thousands of them, mostly idle, so a link is kept small: every field is
 * declared here (one object shape), the handshake's buffer and timer are
 * dropped when the session opens, and the link itself handles its
 * connection's events, is its intake's sink and the gate's eviction target
 * (methods, not closures per link).
 */
export class Link implements GuardedLink, IntakeSink, ConnectionHandler, BudgetedLink {
  session: PeerSession | undefined = undefined;
  /** A client letting go of this link's records after the link went past its own bound (intake-shed.ts). */
  shed: RecordShed | undefined = undefined;
  /** Keys of this link's records a client let go, asked of it again (made at its first shedding, client-shedding.ts). */
  asks: ShedAsks | undefined = undefined;
  /** Frames that arrived while the handshake signature was checked (created by the first one). */
  pending: string[] | undefined = undefined;
  handshaking = false;
  /** The nonce sent in this link's handshake, until the peer's proof of it was checked. */
  challenge: Challenge | undefined = undefined;
  strikes = 0;
  /** Messages dropped for a key with a lone surrogate since the last report, and when that was (LinkTable.illFormedKey). */
  illFormedKeys = 0;
  illFormedReportedAt = Number.NEGATIVE_INFINITY;
  /** The handshake timeout, until the session opens. */
  timer: TimerHandle | undefined = undefined;
  ticket: GateTicket | undefined = undefined;
  intake: LinkIntake | undefined = undefined;
  /** When the peer last sent a message after the handshake (ms; 0 = never): idle links are evicted first. */
  lastUseful = 0;
  /** Outgoing bytes queued at the send budget's last reading. */
  queued = 0;
  /** Since when the outgoing queue has not shrunk (kept by the send budget). */
  stalledSince = 0;
  /** The IP replies to this link are charged to (incoming links from IPs that are not exempt). */
  chargedIp: string | undefined = undefined;

  constructor(
    private readonly owner: LinkOwner,
    readonly connection: Connection,
    readonly target: DialTarget | undefined,
  ) {}

  // ConnectionHandler
  onMessage(frame: string): void {
    this.owner.frameArrived(this, frame);
  }

  onRefused(code: ErrorCode, reason: string): void {
    this.owner.transportRefused(this, code, reason);
  }

  onClose(code: number, reason: string): void {
    this.owner.linkClosed(this, code, reason);
  }

  onRevived(silentMs: number): void {
    this.owner.linkRevived(this, silentMs);
  }

  onSent(): void {
    this.owner.frameSent(this);
  }

  mayQueue(bytes: number): boolean {
    return this.owner.mayQueue(this, bytes);
  }

  // IntakeSink
  dispatch(frame: string): Dispatched {
    return this.owner.dispatchFrame(this, frame);
  }

  pause(): void {
    this.connection.pause();
  }

  resume(): void {
    this.connection.resume();
  }

  backlog(): number {
    return this.connection.sendBacklog;
  }

  get gone(): boolean {
    return this.connection.closed;
  }

  held(outstanding: number): boolean {
    return this.owner.held(this, outstanding);
  }

  /**
   * SessionLink.spend: from the intake's token bucket (a link without one yet
   * has no rate to spend from), never its last half: work done for the peer
   * does not hold up the peer's own frames (a busy honest server's relays).
   */
  spend(messages: number): boolean {
    const bucket = this.intake?.bucket;
    return bucket ? bucket.tryTake(messages, bucket.burst / 2) : true;
  }

  overflow(frame: string, allLinks: boolean): void {
    this.owner.overflowed(this, frame, allLinks);
  }

  crowded(): void {
    this.owner.crowded(this);
  }

  /** Called by the connection gate (GateTicket holder). */
  evicted(reason: string): void {
    this.owner.evicted(this, reason);
  }

  standing(): Standing {
    return this.owner.standing(this);
  }

  activity(): Standing {
    return this.owner.activity(this);
  }

  /** Called by the send budget. */
  overBudget(reason: string, stalled: boolean): void {
    this.owner.overBudget(this, reason, stalled);
  }
}
