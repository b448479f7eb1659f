/**
 * The handshake of a link: who the peer is. An outgoing link sends the
 * signed ping; the answer (a pong, or on an incoming link the ping) is
 * checked (peer record signature, topic, client id, not self), then the
 * duplicate-link rule and the session table decide whether a session opens.
 * The messages and pure rules are in handshake-messages.ts; the link table
 * (link-table.ts) owns the links and sessions and calls in here until a
 * link has a session.
 */
import { ErrorCode, errorText } from "../base/errors.js";
import type { PeerRecord, PingMessage, PongMessage, ToolDbMessage } from "../records/messages.js";
import { type PeerRecordProblem, clientIdOf } from "../records/peer-record.js";
import { CloseCode, type Connection } from "./connection.js";
import { NO_IDENTITY, identityRefusal, keepNewLink, pingMessage, pongIdentity, pongMessage } from "./handshake-messages.js";
import type { Link } from "./link.js";
import type { LogFn } from "../base/logger.js";
import type { TypedEmitter } from "../base/typed-emitter.js";
import type { LinkGuard } from "./link-guard.js";
import type { NetworkEvents } from "./network-events.js";
import type { NetworkHost } from "./network-host.js";
import type { TrafficCounters } from "./traffic.js";
import { PeerSession, capabilitySet } from "./peer-session.js";

/** What the handshake uses of its adapter (a part of the link table's context). */
export interface HandshakeContext {
  readonly host: NetworkHost;
  readonly guard: LinkGuard;
  readonly traffic: TrafficCounters;
  readonly log: LogFn;
  /** The adapter: duplicate events are its events. */
  readonly events: TypedEmitter<NetworkEvents>;
  isClosing(): boolean;
  now(): number;
}

/** What the handshake uses of its link table. */
export interface HandshakeOwner {
  readonly sessions: Map<string, PeerSession>;
  parse(link: Link, frame: string): ToolDbMessage | null | undefined;
  strike(link: Link | undefined, code: ErrorCode, reason: string): void;
  closeLink(link: Link, code: number, reason: string, refusal: ErrorCode | undefined): void;
  openSession(link: Link, session: PeerSession): void;
}

export class Handshake {
  constructor(
    private readonly ctx: HandshakeContext,
    private readonly table: HandshakeOwner,
  ) {}

  /** Outgoing links: the ping that opens the handshake. */
  async sendPing(link: Link): Promise<void> {
    try {
      link.connection.send(JSON.stringify(await pingMessage(this.ctx.host)));
    } catch (err) {
      this.table.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
    }
  }

  /** A frame on a link without a session: a ping (incoming) or pong (outgoing) starts the identity check. */
  onFrame(link: Link, frame: string): void {
    const message = this.table.parse(link, frame);
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
      this.table.strike(link, ErrorCode.BAD_MESSAGE, `${message.type} before handshake`);
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
      this.table.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
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
    this.table.openSession(link, session);
  }

  private async acceptPong(link: Link, pong: PongMessage): Promise<void> {
    const identity = pongIdentity(pong);
    if (!identity) {
      this.table.closeLink(link, NO_IDENTITY.closeCode, NO_IDENTITY.reason, NO_IDENTITY.code);
      return;
    }
    const { record } = identity;
    if (!(await this.checkIdentity(link, record, pong.clientId, identity.maxAgeMs))) return;
    const session = this.establish(link, record, pong.isServer);
    if (!session) return;
    session.caps = capabilitySet(pong.caps);
    this.table.openSession(link, session);
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
    if (refusal) this.table.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
    return refusal === null;
  }

  /** Creates the session, resolving duplicate links to the same node deterministically. */
  private establish(link: Link, record: PeerRecord, isServer: boolean): PeerSession | undefined {
    const clientId = clientIdOf(record.address);
    const refusal = this.ctx.guard.verify(link, clientId);
    if (refusal) {
      this.table.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
      return undefined;
    }
    const existing = this.table.sessions.get(clientId);
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
}
