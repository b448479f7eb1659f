/**
 * The link state machine of one network adapter: every link from `attach`
 * to its close (handshake timeout, frames buffered while the handshake
 * signature is checked, strikes and punishment for invalid messages), the
 * session table of the links that completed the handshake (handshake.ts
 * runs the handshake itself), and the server lists exchanged after it. The transport-facing half (lifecycle, dialing,
 * routing) stays in `ToolDbNetworkAdapter`, which owns one LinkTable.
 */
import type { TimerGroup } from "../base/clock.js";
import { ErrorCode, errorText, isToolDbError } from "../base/errors.js";
import type { PingMessage, PongMessage, ToolDbMessage } from "../records/messages.js";
import { parseMessage } from "../records/parse-message.js";
import { signedRecordsIn } from "../records/carried-records.js";
import { CloseCode, type Connection } from "./connection.js";
import type { DialTarget } from "./dial-target.js";
import type { Dialer } from "./dialer.js";
import { Handshake, type HandshakeContext, type HandshakeOwner } from "./handshake.js";
import { pingMessage, pongMessage } from "./handshake-messages.js";
import { Standing } from "./connection-gate.js";
import { evictionRefusal } from "./link-guard.js";
import { Link, type LinkOwner } from "./link.js";
import type { NetworkOptions } from "./network-host.js";
import { type Dispatched, recordWeight } from "./fair-intake.js";
import { ClientShedding } from "./client-shedding.js";
import type { PeerSession } from "./peer-session.js";

/** Frames buffered while the handshake signature check runs. */
const MAX_FRAMES_BEFORE_HANDSHAKE = 64;
/** Invalid messages tolerated on one link before it is dropped. */
const MAX_STRIKES = 10;
/** A link whose peer sent a message this recently is at work, not idle (ms): idle links are evicted first. */
const ACTIVE_MS = 60_000;
/** Messages dropped for an ill-formed key are reported at most once in this long a link (ms), with how many since. */
const ILL_FORMED_REPORT_MS = 60_000;


/** What the table uses of its adapter. */
export interface LinkTableContext extends HandshakeContext {
  readonly options: NetworkOptions;
  readonly timers: TimerGroup;
  readonly dialer: Dialer;
}

export class LinkTable implements LinkOwner, HandshakeOwner {
  /** Verified sessions by client id. */
  readonly sessions = new Map<string, PeerSession>();
  /**
   * Of those, the peers that said they are servers: a relay goes to a
   * server's few mesh peers, and must not walk its thousands of clients for
   * every record it passes on (a catch-up relays a million).
   */
  readonly serverSessions = new Map<string, PeerSession>();
  private readonly links = new Set<Link>();

  private readonly handshake: Handshake;
  /** A client's links past the intake's bounds (client-shedding.ts). */
  private readonly shedding: ClientShedding<Link>;

  constructor(private readonly ctx: LinkTableContext) {
    this.handshake = new Handshake(ctx, this);
    this.shedding = new ClientShedding({
      timers: ctx.timers,
      limits: ctx.guard.intakeLimits,
      refused: (link, reason) => this.transportRefused(link, ErrorCode.MEMORY_LIMIT, reason),
      drop: (link, reason) => link.connection.abort(CloseCode.OVERLOADED, reason),
      askAgain: (session, keys) => this.ctx.host.sessionShed?.(session, keys),
      awaitsReply: (session, id, key) => session.askedAgain(id, key) || this.ctx.host.requests?.keyOf(id) === key,
    });
  }

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
      target?.firstContactTimeout ?? options.handshakeTimeout,
    );
    connection.handleWith(link);
    if (connection.info.outgoing) void this.handshake.sendPing(link);
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
      this.handshake.onFrame(link, frame);
      return;
    }
    this.deliver(link, frame);
  }

  private deliver(link: Link, frame: string): void {
    this.ctx.guard.intakeOf(link, link).push(frame);
  }

  parse(link: Link, frame: string): ToolDbMessage | null | undefined {
    try {
      return parseMessage(frame);
    } catch (err) {
      const reason = isToolDbError(err) ? err.message : errorText(err);
      if (reason === "malformed JSON") {
        this.closeLink(link, CloseCode.BAD_MESSAGE, reason, ErrorCode.BAD_MESSAGE);
        this.punish(link, reason);
      } else if (isToolDbError(err, ErrorCode.INVALID_KEY) && link.session) {
        this.illFormedKey(link, reason);
      } else {
        this.strike(link, ErrorCode.BAD_MESSAGE, reason);
      }
      return undefined;
    }
  }

  /**
   * A get, crdtGet, subscribe or query whose key has a lone surrogate: dropped, no strike. tool-db 2.6.6
   * takes such keys, so a 2.6.6 app that cut an emoji in half asks for them (again on every reconnect), and
   * honest peers relay them. Reported once, then at most once in ILL_FORMED_REPORT_MS a link with a count.
   */
  private illFormedKey(link: Link, reason: string): void {
    const now = this.ctx.now();
    link.illFormedKeys++;
    if (now - link.illFormedReportedAt < ILL_FORMED_REPORT_MS) return;
    const count = link.illFormedKeys;
    link.illFormedKeys = 0;
    link.illFormedReportedAt = now;
    const info = link.connection.info;
    const more = count > 1 ? ` (${count} such messages dropped on this link since the last report)` : "";
    this.ctx.host.refused({ code: ErrorCode.INVALID_KEY, reason: `${reason}${more}`, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
  }

  strike(state: Link | undefined, code: ErrorCode, reason: string, key?: string): void {
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
    // Only a proven session's identity is banned: an unproven one may have been opened with a
    // replayed peer record (anyone a client ever dialed holds its ping), and an offence on it
    // would get the real owner banned at a server it never met. Its IP still answers for it.
    const identity = link.session?.proven ? link.session.clientId : undefined;
    const ban = this.ctx.guard.offence(link, identity, reason);
    if (ban) this.ctx.host.refused({ ...ban, peer: link.session?.clientId, host: link.connection.info.remoteHost, port: link.connection.info.remotePort });
  }

  private linkOf(session: PeerSession): Link | undefined {
    for (const link of this.links) if (link.session === session) return link;
    return undefined;
  }

  private dispatch(link: Link, session: PeerSession, frame: string): Dispatched {
    const message = this.parse(link, frame);
    if (!message) return;
    this.ctx.traffic.in(message.type);
    if (message.type === "ping" || message.type === "pong") {
      this.onServerListMessage(session, message); // the handshake is done once
      return;
    }
    link.lastUseful = this.ctx.now();
    try {
      const handled = this.ctx.host.handleMessage(message, session);
      // A sync push weighs by its size until its records were taken in (up to 4,096 records a frame:
      // unweighed, 64 links' queued pushes held 2.3 GiB in an outside check), at most a peer's share:
      // by its records alone a full frame weighed 348, over the whole server's cap, and held every peer's frames (review).
      if (handled && message.type === "syncPush") {
        return { done: handled, weight: Math.min(recordWeight(frame.length, message.records.length), this.ctx.guard.limits.maxOutstandingPerPeer) };
      }
      // A graft asks for up to 1,024 records: each costs a message of the rate, as the get it replaces would.
      if (handled && message.type === "graft") return { done: handled, weight: 1, cost: message.hs.length };
      if (!handled || (message.type !== "put" && message.type !== "crdtPut")) return handled; // requests answered with data weigh 1
      // A put weighs by its size in the intake's caps, and by the signed records it carries (a CRDT
      // document's heads: each is checked on its own) there and in the message rate.
      const records = signedRecordsIn(message.data);
      return { done: handled, weight: recordWeight(frame.length, records), cost: records };
    } catch (err) {
      this.strike(link, ErrorCode.BAD_MESSAGE, `handler failed: ${errorText(err)}`);
    }
  }

  openSession(link: Link, session: PeerSession): void {
    const { host, dialer } = this.ctx;
    if (link.connection.closed || this.ctx.isClosing()) return;
    this.ctx.timers.clearTimeout(link.timer);
    link.timer = undefined;
    link.session = session;
    this.sessions.set(session.clientId, session);
    if (session.isServer) this.serverSessions.set(session.clientId, session);
    if (link.target) dialer.opened(link.target, session.address);
    this.ctx.log("session open %s (%s)", session.clientId, link.connection.info.outgoing ? "out" : "in");
    host.sessionOpened(session);
    this.ctx.events.emit("session-open", session);
    if (session.proven) {
      host.sessionProven?.(session);
      this.ctx.events.emit("session-proven", session);
    }
    const queued = link.pending;
    link.pending = undefined;
    for (const frame of queued ?? []) this.deliver(link, frame);
  }

  // ---- LinkOwner: what a link calls back into --------------------------------

  frameArrived(link: Link, frame: string): void {
    // A client shedding this link's records (past the link's own bound): they go as they come, keys noted.
    if (link.shed && !link.shed.keep(frame)) return;
    this.onFrame(link, frame);
  }

  transportRefused(link: Link, code: ErrorCode, reason: string): void {
    const info = link.connection.info;
    this.ctx.host.refused({ code, reason, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
  }

  linkClosed(link: Link, code: number, reason: string): void {
    this.onLinkClose(link, code, reason);
  }

  linkRevived(link: Link, silentMs: number): void {
    if (link.session && !this.ctx.isClosing()) this.ctx.host.sessionRevived?.(link.session, silentMs);
  }

  dispatchFrame(link: Link, frame: string): Dispatched {
    return this.dispatch(link, link.session!, frame);
  }

  overflowed(link: Link, frame: string, allLinks: boolean): void {
    if (this.ctx.guard.enforcing) {
      this.strike(link, ErrorCode.RATE_LIMITED, `over the message rate (${this.ctx.guard.limits.messageRate}/s) with a full queue: frame dropped`);
      return;
    }
    this.shedding.overflowed(link, frame, allLinks);
  }

  crowded(link: Link): void {
    this.shedding.crowded(link);
  }

  evicted(link: Link, reason: string): void {
    const refusal = evictionRefusal(reason);
    this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
  }

  standing(link: Link): Standing {
    return link.session?.provenServer ? Standing.ProvenServer : this.activity(link);
  }

  activity(link: Link): Standing {
    return link.lastUseful > 0 && this.ctx.now() - link.lastUseful < ACTIVE_MS ? Standing.Active : Standing.Idle;
  }

  frameSent(link: Link): void {
    this.ctx.guard.sent(link);
  }

  held(link: Link, outstanding: number): boolean {
    return this.ctx.guard.held(link, outstanding);
  }

  mayQueue(link: Link, bytes: number): boolean {
    const refusal = this.ctx.guard.mayQueue(link, bytes);
    if (refusal === null) return true;
    this.overBudget(link, refusal, true); // mayQueue refuses only stalled links
    return false;
  }

  overBudget(link: Link, reason: string, stalled: boolean): void {
    const info = link.connection.info;
    this.ctx.host.refused({ code: ErrorCode.MEMORY_LIMIT, reason, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
    link.connection.abort(CloseCode.OVERLOADED, reason); // its unread queue is freed at once
    // A peer that was not reading at all (stalled) counts against its IP only, never its identity, and never a
    // proven server: an address whose links stall again and again, under fresh identities, is banned after
    // `ipBanAfter` such drops instead of refilling the queue. A reader that was merely slow is not counted.
    if (!stalled || link.session?.provenServer) return;
    const ban = this.ctx.guard.offence(link, undefined, reason);
    if (ban) this.ctx.host.refused({ ...ban, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
  }

  closeLink(link: Link, code: number, reason: string, refusal: ErrorCode | undefined): void {
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
    link.shed?.cancel();
    link.asks?.cancel();
    const session = link.session;
    if (session && this.sessions.get(session.clientId) === session) {
      this.sessions.delete(session.clientId);
      this.serverSessions.delete(session.clientId);
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
  requestServers(session: PeerSession): Promise<boolean> {
    return pingMessage(this.ctx.host).then(
      (ping) => session.send(ping),
      (err) => {
        this.ctx.log("cannot sign server-list request: %s", errorText(err));
        return false;
      },
    );
  }

  private onServerListMessage(session: PeerSession, message: PingMessage | PongMessage): void {
    if (message.type === "pong") {
      // Only a peer that proved its key and says it serves; the host rate-bounds even those (a pong skips the intake's caps).
      if (session.provenServer) this.ctx.host.learnServers(message.servers, session, "pong");
    } else if (this.ctx.host.isServer) {
      pongMessage(this.ctx.host, message.id).then(
        (pong) => session.send(pong),
        (err) => this.ctx.log("cannot sign server list: %s", errorText(err)),
      );
    }
  }
}
