import { type Clock, TimerGroup, type TimerHandle } from "../core/clock.js";
import { ErrorCode, ToolDbError, errorText, isToolDbError } from "../core/errors.js";
import { createLogger, type LogFn } from "../core/logger.js";
import { type OutgoingMessage, type PeerRecord, type PingMessage, type PongMessage, type ToolDbMessage, parseMessage } from "../core/messages.js";
import { type PeerRecordProblem, clientIdOf } from "../core/peer-record.js";
import { randomId } from "../core/random.js";
import { TypedEmitter } from "../core/typed-emitter.js";
import { CloseCode, type Connection, type ConnectionInfo } from "./connection.js";
import type { DialTarget } from "./dial-target.js";
import { Dialer, type DialFailedEvent } from "./dialer.js";
import type { Limits } from "../core/limits.js";
import { LinkGuard, type GuardedLink } from "./link-guard.js";
import { TrafficCounters } from "./traffic.js";

export type { DialFailedEvent } from "./dialer.js";
import { PeerSession } from "./peer-session.js";

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** Frames buffered while the handshake signature check runs. */
const MAX_FRAMES_BEFORE_HANDSHAKE = 64;
/** Invalid messages tolerated on one link before it is dropped. */
const MAX_STRIKES = 10;

import { type NetworkHost, type NetworkOptions, networkOptionsFrom } from "./network-host.js";
import { type ByteStream, StreamConnection } from "./stream-connection.js";

export { type NetworkHostOptions, type NetworkHost, type RefusalEvent, type NetworkOptions, networkOptionsFrom } from "./network-host.js";

export interface NetworkAdapterConstructor {
  new (host: NetworkHost): ToolDbNetworkAdapter;
}

export type NetworkEvents = {
  "session-open": [session: PeerSession];
  "session-close": [session: PeerSession, code: number, reason: string];
  "dial-failed": [event: DialFailedEvent];
  /** Two links reached the same node (e.g. over two transports); `closed` was dropped with `reason`. */
  duplicate: [event: { peer: string; kept: string; closed: string; reason: string }];
};

export interface ConnectOptions {
  maxRetries?: number;
}

interface LinkState extends GuardedLink {
  connection: Connection;
  target?: DialTarget;
  session?: PeerSession;
  pending: string[];
  handshaking: boolean;
  strikes: number;
  timer?: TimerHandle;
}

/**
 * The network contract and its transport-independent half: ToolDb handshake
 * (signed peer records, topic check), identity de-duplication, frame
 * validation, dialing with backoff, and routing helpers. A transport
 * subclasses it, implements `dial`, `listen` and `_close`, and hands every
 * new link to `attach`. Third-party transports run
 * test/compliance/network-suite against themselves.
 */
export abstract class ToolDbNetworkAdapter extends TypedEmitter<NetworkEvents> {
  protected readonly log: LogFn;
  protected readonly timers: TimerGroup;
  protected readonly clock: Clock | undefined;
  protected readonly options: NetworkOptions;
  private readonly sessions = new Map<string, PeerSession>();
  private readonly links = new Set<LinkState>();
  private readonly dialer: Dialer;
  /** Connection limits, bans and the fair message intake (enforced on servers). */
  readonly guard: LinkGuard;
  /** Messages in and out by type (for metrics). */
  readonly traffic = new TrafficCounters();
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  /** Set when this transport runs inside a composite: its links join the composite's handshake and sessions. */
  private upstream: ToolDbNetworkAdapter | undefined;

  constructor(
    protected readonly host: NetworkHost,
    component = "network",
  ) {
    super();
    this.options = networkOptionsFrom(host.options);
    this.log = createLogger(component);
    this.clock = this.options.clock;
    this.timers = new TimerGroup(this.options.clock);
    this.guard = new LinkGuard(host.options.server, host.options.limits, this.timers, () => this.now());
    this.dialer = new Dialer(this.options, this.timers, {
      open: (target) => this.openTarget(target),
      failed: (event) => this.emit("dial-failed", event),
    });
  }

  // ---- transport hooks -------------------------------------------------

  /** Opens an outgoing link; the link is passed to `attach` by the subclass or returned. */
  protected abstract dial(host: string, port: number): Connection;
  /** Starts accepting links (servers). Called once, after the host is ready. */
  protected abstract listen(): Promise<void>;
  /** Releases transport resources (listening sockets). Links are closed by the base. */
  protected abstract _close(): Promise<void>;

  /** False for transports that cannot dial host:port (Hyperswarm): `connectTo` is then ignored. */
  get canDial(): boolean {
    return true;
  }

  /** Composite networks only: opens a link through this transport without attaching it here. */
  openConnection(host: string, port: number): Connection {
    return this.dial(host, port);
  }

  /** Composite networks only: this transport's links go to `parent`'s handshake and session table. */
  deliverLinksTo(parent: ToolDbNetworkAdapter): void {
    this.upstream = parent;
  }

  /** The adapter that owns this transport's sessions (and emits session events): the composite, or itself. */
  protected get sessionOwner(): ToolDbNetworkAdapter {
    return this.upstream ?? this;
  }

  // ---- lifecycle -------------------------------------------------------

  /**
   * Idempotent. The host calls it once its keys are loaded; resolves when
   * listening (servers) or at once (clients).
   */
  start(): Promise<void> {
    this.startPromise ??= this.closing ? Promise.resolve() : this.listen();
    return this.startPromise;
  }

  get isClosed(): boolean {
    return this.closing;
  }

  /** Idempotent: closes every link, stops every dialer and timer. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.timers.clearAll();
    this.guard.intake?.close();
    this.dialer.close();
    for (const link of [...this.links]) link.connection.close(CloseCode.GOING_AWAY, "node closing");
    await this.startPromise?.catch(() => undefined);
    await this._close();
    this.silence();
  }

  // ---- dialing ---------------------------------------------------------

  /**
   * Keeps a link to host:port, reconnecting with backoff. Repeated calls for
   * the same address are ignored; a second address of an already-connected
   * node is parked until the first link drops.
   */
  connectTo(host: string, port: number, opts: ConnectOptions = {}): void {
    if (!this.canDial) this.log("cannot dial %s:%d: this transport does not dial addresses", host, port);
    else if (!this.closing) this.dialer.connect(host, port, opts.maxRetries);
  }

  /** Stops keeping a link to host:port and closes it if open. */
  disconnectFrom(host: string, port: number): void {
    const target = this.dialer.forget(host, port);
    if (!target) return;
    for (const link of this.links) if (link.target === target) link.connection.close(CloseCode.NORMAL, "disconnect requested");
  }

  /** Dial targets and their states, for status pages and tests. */
  dialTargets(): Array<{ host: string; port: number; state: string; address?: string; failures: number }> {
    return this.dialer.list();
  }

  private openTarget(target: DialTarget): void {
    this.log("dialing %s", target.key);
    let connection: Connection;
    try {
      connection = this.dial(target.host, target.port);
    } catch (err) {
      this.dialer.linkClosed(target, CloseCode.GOING_AWAY, errorText(err), false);
      return;
    }
    this.attach(connection, target);
  }

  // ---- links and handshake --------------------------------------------

  /**
   * The stream bridge: runs ToolDb (framing, signed handshake, heartbeat,
   * de-duplication) on any duplex byte stream, e.g. a Hyperswarm socket.
   * `outgoing` says which end starts the handshake; it defaults to the
   * stream's `isInitiator` (Hyperswarm/Noise streams have it).
   */
  attachStream(stream: ByteStream & { isInitiator?: boolean }, info: Partial<ConnectionInfo> = {}): Connection {
    const outgoing = info.outgoing ?? stream.isInitiator;
    if (outgoing === undefined) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "attachStream: say which end starts the handshake (info.outgoing)");
    const { heartbeatInterval, maxMessageBytes } = this.host.options;
    const connection = new StreamConnection(stream, { transport: "stream", ...info, outgoing }, { heartbeatInterval, maxMessageBytes, clock: this.clock });
    this.attach(connection);
    return connection;
  }

  /** Hands a new transport link to the protocol. Transports call this for incoming links. */
  protected attach(connection: Connection, target?: DialTarget): void {
    if (this.upstream) return this.upstream.attach(connection, target);
    if (this.closing) {
      connection.close(CloseCode.GOING_AWAY, "node closing");
      return;
    }
    const link: LinkState = { connection, target, pending: [], handshaking: false, strikes: 0 };
    const refusal = this.guard.admit(link, (evicted) => this.closeLink(link, evicted.closeCode, evicted.reason, evicted.code));
    if (refusal) {
      this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
      return;
    }
    this.links.add(link);
    link.timer = this.timers.setTimeout(
      () => this.closeLink(link, CloseCode.HANDSHAKE_TIMEOUT, "handshake timeout", ErrorCode.HANDSHAKE_TIMEOUT),
      this.options.handshakeTimeout,
    );
    connection.on("message", (frame) => this.onFrame(link, frame));
    connection.on("refused", (code, reason) => {
      const info = connection.info;
      this.host.refused({ code, reason, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
    });
    connection.on("close", (code, reason) => this.onLinkClose(link, code, reason));
    if (connection.info.outgoing) void this.sendPing(link);
  }

  private async pingMessage(): Promise<PingMessage> {
    await this.host.ready;
    const peer = await this.host.localPeerRecord();
    const me = clientIdOf(this.host.nodeAddress());
    return { type: "ping", id: randomId(), to: [me], clientId: me, isServer: this.host.isServer, peer, caps: this.host.capabilities?.() };
  }

  /** Sign first: a server's own fresh record then heads the `servers` list too (tool-db reads only that list). */
  private async pongMessage(id: string): Promise<PongMessage> {
    const peer = await this.host.localPeerRecord();
    return { type: "pong", id, to: [], clientId: clientIdOf(this.host.nodeAddress()), isServer: this.host.isServer, servers: this.host.knownServers(), peer, caps: this.host.capabilities?.() };
  }

  private async sendPing(link: LinkState): Promise<void> {
    try {
      link.connection.send(JSON.stringify(await this.pingMessage()));
    } catch (err) {
      this.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
    }
  }

  private onFrame(link: LinkState, frame: string): void {
    if (frame.length > this.options.maxMessageBytes) {
      this.closeLink(link, CloseCode.TOO_LARGE, "frame too large", ErrorCode.FRAME_TOO_LARGE);
      return;
    }
    if (!link.session) {
      if (link.handshaking) {
        if (link.pending.length >= MAX_FRAMES_BEFORE_HANDSHAKE) {
          this.closeLink(link, CloseCode.BAD_MESSAGE, "too many frames before handshake", ErrorCode.BAD_MESSAGE);
        } else link.pending.push(frame);
        return;
      }
      this.onHandshakeFrame(link, frame);
      return;
    }
    this.deliver(link, link.session, frame);
  }

  private deliver(link: LinkState, session: PeerSession, frame: string): void {
    if (link.intake) link.intake.push(frame);
    else void this.dispatch(link, session, frame);
  }

  private parse(link: LinkState, frame: string): ToolDbMessage | null | undefined {
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

  /** Counts an invalid message (e.g. a refused record) against a peer; drops it past MAX_STRIKES. */
  strikePeer(session: PeerSession, code: ErrorCode, reason: string, key?: string): void {
    this.strike(this.linkOf(session), code, reason, key);
  }

  private strike(state: LinkState | undefined, code: ErrorCode, reason: string, key?: string): void {
    const session = state?.session;
    this.host.refused({ code, reason, key, peer: session?.clientId, host: state?.connection.info.remoteHost, port: state?.connection.info.remotePort });
    if (!state) return;
    state.strikes++;
    if (state.strikes > MAX_STRIKES) {
      this.closeLink(state, CloseCode.TOO_MANY_STRIKES, `too many invalid messages (last: ${reason})`, code);
      this.punish(state, reason);
    }
  }

  /** The link was dropped for breaking the protocol: may ban its identity and IP. */
  private punish(link: LinkState, reason: string): void {
    const ban = this.guard.offence(link, link.session?.clientId, reason);
    if (ban) this.host.refused({ ...ban, peer: link.session?.clientId, host: link.connection.info.remoteHost, port: link.connection.info.remotePort });
  }

  private linkOf(session: PeerSession): LinkState | undefined {
    for (const link of this.links) if (link.session === session) return link;
    return undefined;
  }

  private dispatch(link: LinkState, session: PeerSession, frame: string): void | Promise<unknown> {
    const message = this.parse(link, frame);
    if (!message) return;
    this.traffic.in(message.type);
    if (message.type === "ping" || message.type === "pong") {
      this.onServerListMessage(session, message); // the handshake is done once
      return;
    }
    try {
      return this.host.handleMessage(message, session);
    } catch (err) {
      this.strike(link, ErrorCode.BAD_MESSAGE, `handler failed: ${errorText(err)}`);
    }
  }

  private onHandshakeFrame(link: LinkState, frame: string): void {
    const message = this.parse(link, frame);
    if (!message) return;
    this.traffic.in(message.type);
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

  private async acceptPing(link: LinkState, ping: PingMessage): Promise<void> {
    // A bridged stream (attachStream) may arrive before the node's keys are loaded.
    await this.host.ready.catch(() => undefined);
    const identity = await this.checkIdentity(link, ping.peer, ping.clientId);
    if (!identity) return;
    const session = this.establish(link, ping.peer, ping.isServer);
    if (!session) return;
    session.caps = new Set(ping.caps);
    try {
      link.connection.send(JSON.stringify(await this.pongMessage(ping.id)));
    } catch (err) {
      this.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
      return;
    }
    this.openSession(link, session);
  }

  private async acceptPong(link: LinkState, pong: PongMessage): Promise<void> {
    // tool-db 2.6.6 servers send no `peer`, but list themselves among `servers`.
    const record = pong.peer ?? pong.servers.find((r) => clientIdOf(r.address) === pong.clientId);
    if (!record) {
      // A 2.6.6 server lists itself only once its keys are loaded: retry later, don't give up.
      this.closeLink(link, CloseCode.NO_IDENTITY, "pong carries no verifiable identity", ErrorCode.BAD_PEER);
      return;
    }
    // tool-db 2.6.6 signs its own record once at start-up and never again: its age says nothing.
    const maxAge = pong.peer ? undefined : Number.POSITIVE_INFINITY;
    const identity = await this.checkIdentity(link, record, pong.clientId, maxAge);
    if (!identity) return;
    const session = this.establish(link, record, pong.isServer);
    if (!session) return;
    session.caps = new Set(pong.caps);
    this.openSession(link, session);
    this.host.learnServers(pong.servers, session);
  }

  private async checkIdentity(link: LinkState, record: PeerRecord, clientId: string, maxAgeMs?: number): Promise<boolean> {
    let problem: PeerRecordProblem | null;
    try {
      problem = await this.host.checkPeerRecord(record, maxAgeMs);
    } catch (err) {
      problem = "signature";
      this.log("peer record check failed: %s", errorText(err));
    }
    if (link.connection.closed || this.closing) return false;
    if (problem === "topic") {
      this.closeLink(link, CloseCode.TOPIC_MISMATCH, `topic mismatch: this node serves "${this.host.topic.slice(0, 64)}"`, ErrorCode.TOPIC_MISMATCH);
      return false;
    }
    if (problem) {
      this.closeLink(link, CloseCode.BAD_PEER, `bad peer record (${problem})`, ErrorCode.BAD_PEER);
      return false;
    }
    if (clientIdOf(record.address) !== clientId) {
      this.closeLink(link, CloseCode.BAD_PEER, "client id does not match the peer record", ErrorCode.BAD_PEER);
      return false;
    }
    if (record.address === this.host.nodeAddress()) {
      this.closeLink(link, CloseCode.SELF, "connected to self", ErrorCode.BAD_PEER);
      return false;
    }
    return true;
  }

  /** Creates the session, resolving duplicate links to the same node deterministically. */
  private establish(link: LinkState, record: PeerRecord, isServer: boolean): PeerSession | undefined {
    const clientId = clientIdOf(record.address);
    const refusal = this.guard.verify(link, clientId);
    if (refusal) {
      this.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
      return undefined;
    }
    const existing = this.sessions.get(clientId);
    if (existing && !existing.connection.closed) {
      // Both ends apply the same rule, so they drop the same link: keep the
      // one dialed by the node with the smaller address.
      const me = this.host.nodeAddress();
      const dialerOf = (outgoing: boolean) => (outgoing ? me : record.address);
      const keepNew = dialerOf(link.connection.info.outgoing) < dialerOf(existing.outgoing);
      const drop = (closed: Connection, kept: Connection) => {
        const [k, c] = [kept.info.transport ?? "other", closed.info.transport ?? "other"];
        const reason = `duplicate link to the same node (kept the ${k} link)`;
        this.emit("duplicate", { peer: clientId, kept: k, closed: c, reason });
        closed.close(CloseCode.DUPLICATE, reason);
      };
      if (!keepNew) {
        if (link.target) link.target.address = record.address;
        drop(link.connection, existing.connection);
        return undefined;
      }
      drop(existing.connection, link.connection);
    }
    const session = new PeerSession(link.connection, record.address, clientId, isServer, record, this.now(), this.traffic);
    return session;
  }

  private openSession(link: LinkState, session: PeerSession): void {
    if (link.connection.closed || this.closing) return;
    this.timers.clearTimeout(link.timer);
    link.session = session;
    this.sessions.set(session.clientId, session);
    if (link.target) this.dialer.opened(link.target, session.address);
    this.log("session open %s (%s)", session.clientId, link.connection.info.outgoing ? "out" : "in");
    this.host.sessionOpened(session);
    this.emit("session-open", session);
    this.guard.open(link, {
      dispatch: (frame) => this.dispatch(link, session, frame),
      pause: () => link.connection.pause(),
      resume: () => link.connection.resume(),
      backlog: () => link.connection.sendBacklog,
      overflow: () => this.strike(link, ErrorCode.RATE_LIMITED, `over the message rate (${this.guard.limits.messageRate}/s) with a full queue: frame dropped`),
    });
    const queued = link.pending.splice(0);
    for (const frame of queued) this.deliver(link, session, frame);
  }

  private closeLink(link: LinkState, code: number, reason: string, refusal: ErrorCode | undefined): void {
    if (refusal) {
      const info = link.connection.info;
      this.host.refused({ code: refusal, reason, peer: link.session?.clientId, host: info.remoteHost, port: info.remotePort });
    }
    this.log("closing link %s:%s: %d %s", link.connection.info.remoteHost, link.connection.info.remotePort, code, reason);
    link.connection.close(code, reason);
  }

  private onLinkClose(link: LinkState, code: number, reason: string): void {
    this.links.delete(link);
    this.guard.release(link);
    this.timers.clearTimeout(link.timer);
    const session = link.session;
    if (session && this.sessions.get(session.clientId) === session) {
      this.sessions.delete(session.clientId);
      this.log("session closed %s: %d %s", session.clientId, code, reason);
      if (!this.closing) {
        this.host.sessionClosed(session, code, reason);
        this.emit("session-close", session, code, reason);
        this.dialer.unpark(session.address);
      }
    }
    if (link.target) this.dialer.linkClosed(link.target, code, reason, session !== undefined);
  }

  // ---- server lists after the handshake ------------------------------

  /**
   * Asks a linked server for the servers it knows now; its pong is learned
   * like the handshake's, so clients (browsers) pick up servers that
   * appeared after they linked.
   */
  requestServers(session: PeerSession): void {
    this.pingMessage().then(
      (ping) => session.send(ping),
      (err) => this.log("cannot sign server-list request: %s", errorText(err)),
    );
  }

  private onServerListMessage(session: PeerSession, message: PingMessage | PongMessage): void {
    if (message.type === "pong") {
      if (session.isServer) this.host.learnServers(message.servers, session);
    } else if (this.host.isServer) {
      this.pongMessage(message.id).then(
        (pong) => session.send(pong),
        (err) => this.log("cannot sign server list: %s", errorText(err)),
      );
    }
  }

  // ---- routing helpers -------------------------------------------------

  get peers(): PeerSession[] {
    return [...this.sessions.values()];
  }

  session(clientId: string): PeerSession | undefined {
    return this.sessions.get(clientId);
  }

  /** tool-db compatible: this node's client id. */
  getClientAddress(): string {
    return clientIdOf(this.host.nodeAddress());
  }

  isConnected(clientId: string): boolean {
    return this.sessions.has(clientId);
  }

  isServer(clientId: string): boolean {
    return this.sessions.get(clientId)?.isServer ?? false;
  }

  /**
   * Sends to every session not already in `to`, optionally filtered; the
   * frame is serialised once. Returns how many peers it went to.
   */
  sendToAll(message: OutgoingMessage, filter?: (s: PeerSession) => boolean): number {
    const me = this.getClientAddress();
    const to = [...new Set([...(message.to ?? []), me])];
    let frame: string | undefined;
    let count = 0;
    for (const session of this.sessions.values()) {
      if (to.includes(session.clientId)) continue;
      if (filter && !filter(session)) continue;
      frame ??= JSON.stringify({ ...message, to });
      session.sendRaw(frame);
      count++;
    }
    if (count > 0) this.traffic.out(message.type, count);
    return count;
  }

  sendToClientId(clientId: string, message: OutgoingMessage): boolean {
    const session = this.sessions.get(clientId);
    if (!session) return false;
    session.send(message);
    return true;
  }

  protected now(): number {
    return this.clock ? this.clock.now() : Date.now();
  }
}

export function notSupported(what: string): never {
  throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${what} is not supported by this transport`);
}
