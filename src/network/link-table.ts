/**
 * The link state machine of one network adapter: every link from `attach`
 * to its close (handshake timeout, frames buffered while the handshake
 * signature is checked, strikes and punishment for invalid messages), the
 * session table of the links that completed the handshake, and the server
 * lists exchanged after it. The transport-facing half (lifecycle, dialing,
 * routing) stays in `ToolDbNetworkAdapter`, which owns one LinkTable.
 */
import type { TimerGroup } from "../core/clock.js";
import { ErrorCode, errorText, isToolDbError } from "../core/errors.js";
import type { LogFn } from "../core/logger.js";
import { type PeerRecord, type PingMessage, type PongMessage, type ToolDbMessage, parseMessage } from "../core/messages.js";
import { type PeerRecordProblem, clientIdOf } from "../core/peer-record.js";
import type { TypedEmitter } from "../core/typed-emitter.js";
import { CloseCode, type Connection } from "./connection.js";
import type { DialTarget } from "./dial-target.js";
import type { Dialer } from "./dialer.js";
import { NO_IDENTITY, identityRefusal, keepNewLink, pingMessage, pongIdentity, pongMessage } from "./handshake.js";
import { type LinkGuard, evictionRefusal } from "./link-guard.js";
import { Link, type LinkOwner } from "./link.js";
import type { NetworkEvents } from "./network-events.js";
import type { NetworkHost, NetworkOptions } from "./network-host.js";
import { PeerSession, capabilitySet } from "./peer-session.js";
import type { TrafficCounters } from "./traffic.js";

/** Frames buffered while the handshake signature check runs. */
const MAX_FRAMES_BEFORE_HANDSHAKE = 64;
/** Invalid messages tolerated on one link before it is dropped. */
const MAX_STRIKES = 10;


/** What the table uses of its adapter. */
export interface LinkTableContext {
  readonly host: NetworkHost;
  readonly options: NetworkOptions;
  readonly timers: TimerGroup;
  readonly guard: LinkGuard;
  readonly traffic: TrafficCounters;
  readonly dialer: Dialer;
  readonly log: LogFn;
  /** The adapter: session and duplicate events are its events. */
  readonly events: TypedEmitter<NetworkEvents>;
  isClosing(): boolean;
  now(): number;
}

export class LinkTable implements LinkOwner {
  /** Verified sessions by client id. */
  readonly sessions = new Map<string, PeerSession>();
  private readonly links = new Set<Link>();

  constructor(private readonly ctx: LinkTableContext) {}

  /** Admits a new link (or refuses it), starts its handshake timeout, and sends the ping on outgoing links. */
  attach(connection: Connection, target?: DialTarget): void {
    const { guard, timers, options } = this.ctx;
    const link = new Link(this, connection, target);
    const refusal = guard.admit(link);
    if (refusal) {
      this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
      return;
    }
    this.links.add(link);
    link.timer = timers.setTimeout(
      () => this.closeLink(link, CloseCode.HANDSHAKE_TIMEOUT, "handshake timeout", ErrorCode.HANDSHAKE_TIMEOUT),
      options.handshakeTimeout,
    );
    connection.handleWith(link);
    if (connection.info.outgoing) void this.sendPing(link);
  }

  /** Closes every link (the adapter is closing). */
  closeAll(code: number, reason: string): void {
    for (const link of [...this.links]) link.connection.close(code, reason);
  }

  /** Closes the links dialed for `target`. */
  closeTarget(target: DialTarget, code: number, reason: string): void {
    for (const link of this.links) if (link.target === target) link.connection.close(code, reason);
  }

  /** Counts an invalid message (e.g. a refused record) against a peer; drops it past MAX_STRIKES. */
  strikePeer(session: PeerSession, code: ErrorCode, reason: string, key?: string): void {
    this.strike(this.linkOf(session), code, reason, key);
  }

  // ---- frames ------------------------------------------------------------

  private async sendPing(link: Link): Promise<void> {
    try {
      link.connection.send(JSON.stringify(await pingMessage(this.ctx.host)));
    } catch (err) {
      this.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
    }
  }

  private onFrame(link: Link, frame: string): void {
    if (frame.length > this.ctx.options.maxMessageBytes) {
      this.closeLink(link, CloseCode.TOO_LARGE, "frame too large", ErrorCode.FRAME_TOO_LARGE);
      return;
    }
    if (!link.session) {
      if (link.handshaking) {
        if ((link.pending?.length ?? 0) >= MAX_FRAMES_BEFORE_HANDSHAKE) {
          this.closeLink(link, CloseCode.BAD_MESSAGE, "too many frames before handshake", ErrorCode.BAD_MESSAGE);
        } else (link.pending ??= []).push(frame);
        return;
      }
      this.onHandshakeFrame(link, frame);
      return;
    }
    this.deliver(link, link.session, frame);
  }

  private deliver(link: Link, session: PeerSession, frame: string): void {
    const intake = this.ctx.guard.intakeOf(link, link);
    if (intake) intake.push(frame);
    else void this.dispatch(link, session, frame);
  }

  private parse(link: Link, frame: string): ToolDbMessage | null | undefined {
    try {
      return parseMessage(frame);
    } catch (err) {
      const reason = isToolDbError(err) ? err.message : errorText(err);
      if (reason === "malformed JSON") {
        this.closeLink(link, CloseCode.BAD_MESSAGE, reason, ErrorCode.BAD_MESSAGE);
        this.punish(link, reason);
      } else {
        this.strike(link, ErrorCode.BAD_MESSAGE, reason);
      }
      return undefined;
    }
  }

  private strike(state: Link | undefined, code: ErrorCode, reason: string, key?: string): void {
    const session = state?.session;
    this.ctx.host.refused({ code, reason, key, peer: session?.clientId, host: state?.connection.info.remoteHost, port: state?.connection.info.remotePort });
    if (!state) return;
    state.strikes++;
    if (state.strikes > MAX_STRIKES) {
      this.closeLink(state, CloseCode.TOO_MANY_STRIKES, `too many invalid messages (last: ${reason})`, code);
      this.punish(state, reason);
    }
  }

  /** The link was dropped for breaking the protocol: may ban its identity and IP. */
  private punish(link: Link, reason: string): void {
    const ban = this.ctx.guard.offence(link, link.session?.clientId, reason);
    if (ban) this.ctx.host.refused({ ...ban, peer: link.session?.clientId, host: link.connection.info.remoteHost, port: link.connection.info.remotePort });
  }

  private linkOf(session: PeerSession): Link | undefined {
    for (const link of this.links) if (link.session === session) return link;
    return undefined;
  }

  private dispatch(link: Link, session: PeerSession, frame: string): void | Promise<unknown> {
    const message = this.parse(link, frame);
    if (!message) return;
    this.ctx.traffic.in(message.type);
    if (message.type === "ping" || message.type === "pong") {
      this.onServerListMessage(session, message); // the handshake is done once
      return;
    }
    try {
      return this.ctx.host.handleMessage(message, session);
    } catch (err) {
      this.strike(link, ErrorCode.BAD_MESSAGE, `handler failed: ${errorText(err)}`);
    }
  }

  // ---- handshake -----------------------------------------------------------

  private onHandshakeFrame(link: Link, frame: string): void {
    const message = this.parse(link, frame);
    if (!message) return;
    this.ctx.traffic.in(message.type);
    const outgoing = link.connection.info.outgoing;
    if (outgoing && message.type === "pong") {
      link.handshaking = true;
      void this.acceptPong(link, message).finally(() => (link.handshaking = false));
    } else if (!outgoing && message.type === "ping") {
      link.handshaking = true;
      void this.acceptPing(link, message).finally(() => (link.handshaking = false));
    } else {
      this.strike(link, ErrorCode.BAD_MESSAGE, `${message.type} before handshake`);
    }
  }

  private async acceptPing(link: Link, ping: PingMessage): Promise<void> {
    // A bridged stream (attachStream) may arrive before the node's keys are loaded.
    await this.ctx.host.ready.catch(() => undefined);
    const identity = await this.checkIdentity(link, ping.peer, ping.clientId);
    if (!identity) return;
    let pong: string;
    try {
      pong = JSON.stringify(await pongMessage(this.ctx.host, ping.id));
    } catch (err) {
      this.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
      return;
    }
    if (link.connection.closed || this.ctx.isClosing()) return;
    // The duplicate check, the pong and the session table in one step: another
    // link of the same node finishing its handshake meanwhile (two carriers whose
    // identical pings were checked together) must see this session.
    const session = this.establish(link, ping.peer, ping.isServer);
    if (!session) return;
    session.caps = capabilitySet(ping.caps);
    link.connection.send(pong);
    this.openSession(link, session);
  }

  private async acceptPong(link: Link, pong: PongMessage): Promise<void> {
    const identity = pongIdentity(pong);
    if (!identity) {
      this.closeLink(link, NO_IDENTITY.closeCode, NO_IDENTITY.reason, NO_IDENTITY.code);
      return;
    }
    const { record } = identity;
    if (!(await this.checkIdentity(link, record, pong.clientId, identity.maxAgeMs))) return;
    const session = this.establish(link, record, pong.isServer);
    if (!session) return;
    session.caps = capabilitySet(pong.caps);
    this.openSession(link, session);
    this.ctx.host.learnServers(pong.servers, session);
  }

  private async checkIdentity(link: Link, record: PeerRecord, clientId: string, maxAgeMs?: number): Promise<boolean> {
    let problem: PeerRecordProblem | null;
    try {
      problem = await this.ctx.host.checkPeerRecord(record, maxAgeMs);
    } catch (err) {
      problem = "signature";
      this.ctx.log("peer record check failed: %s", errorText(err));
    }
    if (link.connection.closed || this.ctx.isClosing()) return false;
    const refusal = identityRefusal(this.ctx.host, problem, record, clientId);
    if (refusal) this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
    return refusal === null;
  }

  /** Creates the session, resolving duplicate links to the same node deterministically. */
  private establish(link: Link, record: PeerRecord, isServer: boolean): PeerSession | undefined {
    const clientId = clientIdOf(record.address);
    const refusal = this.ctx.guard.verify(link, clientId);
    if (refusal) {
      this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
      return undefined;
    }
    const existing = this.sessions.get(clientId);
    if (existing && !existing.connection.closed) {
      const keepNew = keepNewLink(this.ctx.host.nodeAddress(), record.address, link.connection.info.outgoing, existing.outgoing);
      const drop = (closed: Connection, kept: Connection) => {
        const [k, c] = [kept.info.transport ?? "other", closed.info.transport ?? "other"];
        const reason = `duplicate link to the same node (kept the ${k} link)`;
        this.ctx.events.emit("duplicate", { peer: clientId, kept: k, closed: c, reason });
        closed.close(CloseCode.DUPLICATE, reason);
      };
      if (!keepNew) {
        if (link.target) link.target.address = record.address;
        drop(link.connection, existing.connection);
        return undefined;
      }
      drop(existing.connection, link.connection);
    }
    return new PeerSession(link.connection, record.address, clientId, isServer, record, this.ctx.now(), this.ctx.traffic);
  }

  private openSession(link: Link, session: PeerSession): void {
    const { host, dialer } = this.ctx;
    if (link.connection.closed || this.ctx.isClosing()) return;
    this.ctx.timers.clearTimeout(link.timer);
    link.timer = undefined;
    link.session = session;
    this.sessions.set(session.clientId, session);
    if (link.target) dialer.opened(link.target, session.address);
    this.ctx.log("session open %s (%s)", session.clientId, link.connection.info.outgoing ? "out" : "in");
    host.sessionOpened(session);
    this.ctx.events.emit("session-open", session);
    const queued = link.pending;
    link.pending = undefined;
    for (const frame of queued ?? []) this.deliver(link, session, frame);
  }

  // ---- LinkOwner: what a link calls back into --------------------------------

  frameArrived(link: Link, frame: string): void {
    this.onFrame(link, frame);
  }

  transportRefused(link: Link, code: ErrorCode, reason: string): void {
    const info = link.connection.info;
    this.ctx.host.refused({ code, reason, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
  }

  linkClosed(link: Link, code: number, reason: string): void {
    this.onLinkClose(link, code, reason);
  }

  dispatchFrame(link: Link, frame: string): void | Promise<unknown> {
    return this.dispatch(link, link.session!, frame);
  }

  overflowed(link: Link): void {
    this.strike(link, ErrorCode.RATE_LIMITED, `over the message rate (${this.ctx.guard.limits.messageRate}/s) with a full queue: frame dropped`);
  }

  evicted(link: Link, reason: string): void {
    const refusal = evictionRefusal(reason);
    this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
  }

  private closeLink(link: Link, code: number, reason: string, refusal: ErrorCode | undefined): void {
    const info = link.connection.info;
    if (refusal) this.ctx.host.refused({ code: refusal, reason, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
    this.ctx.log("closing link %s:%s: %d %s", info.remoteHost, info.remotePort, code, reason);
    link.connection.close(code, reason);
  }

  private onLinkClose(link: Link, code: number, reason: string): void {
    const { dialer } = this.ctx;
    this.links.delete(link);
    this.ctx.guard.release(link);
    this.ctx.timers.clearTimeout(link.timer);
    const session = link.session;
    if (session && this.sessions.get(session.clientId) === session) {
      this.sessions.delete(session.clientId);
      this.ctx.log("session closed %s: %d %s", session.clientId, code, reason);
      if (!this.ctx.isClosing()) {
        this.ctx.host.sessionClosed(session, code, reason);
        this.ctx.events.emit("session-close", session, code, reason);
        dialer.unpark(session.address);
      }
    }
    if (link.target) dialer.linkClosed(link.target, code, reason, session !== undefined);
  }

  // ---- server lists after the handshake ------------------------------------

  /**
   * Asks a linked server for the servers it knows now; its pong is learned
   * like the handshake's, so clients (browsers) pick up servers that
   * appeared after they linked.
   */
  requestServers(session: PeerSession): void {
    pingMessage(this.ctx.host).then(
      (ping) => session.send(ping),
      (err) => this.ctx.log("cannot sign server-list request: %s", errorText(err)),
    );
  }

  private onServerListMessage(session: PeerSession, message: PingMessage | PongMessage): void {
    if (message.type === "pong") {
      if (session.isServer) this.ctx.host.learnServers(message.servers, session);
    } else if (this.ctx.host.isServer) {
      pongMessage(this.ctx.host, message.id).then(
        (pong) => session.send(pong),
        (err) => this.ctx.log("cannot sign server list: %s", errorText(err)),
      );
    }
  }
}
