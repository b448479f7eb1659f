import { type Clock, TimerGroup } from "../base/clock.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import { createLogger, type LogFn } from "../base/logger.js";
import type { OutgoingMessage } from "../records/messages.js";
import { boundHops } from "../records/hops.js";
import { clientIdOf } from "../records/peer-record.js";
import { checkPeerAddress } from "../limits/peer-address.js";
import { TypedEmitter } from "../base/typed-emitter.js";
import { CloseCode, type Connection, type ConnectionInfo } from "./connection.js";
import type { DialTarget } from "./dial-target.js";
import { HeartbeatSweep } from "./heartbeat-sweep.js";
import { Dialer, NO_DIALER } from "./dialer.js";
import { LinkGuard } from "./link-guard.js";
import { LinkTable } from "./link-table.js";
import type { NetworkEvents } from "./network-events.js";
import { type NetworkHost, type NetworkOptions, networkOptionsFrom } from "./network-host.js";
import type { PeerSession } from "./peer-session.js";
import { type ByteStream, StreamConnection, type StreamConnectionOptions } from "./stream-connection.js";
import { InboundBudget } from "./inbound-budget.js";
import { releaseAfterStart } from "./start-release.js";
import { TrafficCounters } from "./traffic.js";

export type { DialFailedEvent } from "./dialer.js";
export type { NetworkEvents } from "./network-events.js";
export { type NetworkHostOptions, type NetworkHost, type RefusalEvent, type NetworkOptions, networkOptionsFrom } from "./network-host.js";

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export interface NetworkAdapterConstructor {
  new (host: NetworkHost): ToolDbNetworkAdapter;
}

/** `Transport.with(options)`: the transport class with its options bound (ToolDb's `networkAdapter` option takes a class). */
export function withOptions<O>(Transport: new (host: NetworkHost, options: O) => ToolDbNetworkAdapter, options: O): NetworkAdapterConstructor {
  // Transport is concrete, but its instance type is the abstract base, which a class expression may not extend as is.
  const Base = Transport as new (host: NetworkHost, options: O) => object;
  return class extends Base {
    constructor(host: NetworkHost) {
      super(host, options);
    }
  } as NetworkAdapterConstructor;
}

export interface ConnectOptions {
  /** Redials after a failure (after a verified link dropped, when `firstContactTimeout` is set). */
  maxRetries?: number;
  /**
   * First contact with an address not known to be a server: until a link to
   * it completes the handshake, each attempt is bounded by this many ms
   * (connect and handshake together) and a failure is final, so that the
   * caller tries other candidates instead of waiting on this one.
   */
  firstContactTimeout?: number;
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
  private readonly dialer: Dialer;
  /** Every link from attach to close: handshake, strikes, the session table. */
  private readonly links: LinkTable;
  /** Connection limits, bans and the fair message intake (enforced on servers). */
  readonly guard: LinkGuard;
  /** Messages in and out by type (for metrics). */
  readonly traffic = new TrafficCounters();
  /** The heartbeat of every link of this transport, on one timer (a server holds thousands of links). */
  protected readonly heartbeat: HeartbeatSweep;
  /** Bytes of unfinished frames held by this transport's stream and WebSocket links, bounded (`maxReceiveBuffered`). */
  protected readonly inbound: InboundBudget;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  /** Set when this transport runs inside a composite: its links join the composite's handshake and sessions. */
  private upstream: ToolDbNetworkAdapter | undefined;
  /** Under a composite: this transport's links, which the composite holds; closed with the transport. */
  private readonly carried = new Set<Connection>();

  constructor(
    protected readonly host: NetworkHost,
    component = "network",
  ) {
    super();
    this.options = networkOptionsFrom(host.options);
    this.log = createLogger(component);
    this.clock = this.options.clock;
    this.timers = new TimerGroup(this.options.clock);
    this.heartbeat = new HeartbeatSweep(host.options.heartbeatInterval, this.timers);
    this.guard = new LinkGuard(host.options.server, host.options.limits, this.timers, () => this.timers.monotonic(), host.options.clientIntake);
    this.inbound = new InboundBudget(this.guard.limits.maxReceiveBuffered, this.guard.limits.exemptIps);
    this.dialer = new Dialer(this.options, this.timers, {
      open: (target) => this.openTarget(target),
      failed: (event) => this.emit("dial-failed", event),
    });
    this.links = new LinkTable({
      host,
      options: this.options,
      timers: this.timers,
      guard: this.guard,
      traffic: this.traffic,
      dialer: this.dialer,
      log: this.log,
      maxFrameBytes: this.options.maxMessageBytes,
      events: this,
      isClosing: () => this.closing,
      now: () => this.now(),
    });
  }

  // ---- transport hooks -------------------------------------------------

  /** Opens an outgoing link; the link is passed to `attach` by the subclass or returned. */
  protected abstract dial(host: string, port: number): Connection;
  /** Starts accepting links (servers). Called once, after the host is ready. */
  protected abstract listen(): Promise<void>;
  /** Releases transport resources (listening sockets). Links are closed by the base. */
  protected abstract _close(): Promise<void>;

  /** The port this transport listens on (a server, once started); undefined for transports without one (clients, Hyperswarm). */
  get port(): number | undefined {
    return undefined;
  }

  /** False for transports that cannot dial host:port (Hyperswarm): `connectTo` is then ignored. */
  get canDial(): boolean {
    return true;
  }

  /** Composite networks only: opens a link through this transport without attaching it here. */
  openConnection(host: string, port: number): Connection {
    if (this.closing) throw new ToolDbError(ErrorCode.CLOSED, "this transport is closed");
    return this.carry(this.dial(host, port));
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
    this.upstream?.transportClosed();
    this.links.closeAll(CloseCode.GOING_AWAY, "node closing");
    for (const connection of [...this.carried]) connection.close(CloseCode.GOING_AWAY, "transport closing");
    await releaseAfterStart(this.startPromise, () => this._close(), this.timers, this.log); // a start that never ends does not hold close()
    this.silence();
  }

  // ---- dialing ---------------------------------------------------------

  /**
   * Keeps a link to host:port, reconnecting with backoff. Repeated calls for
   * the same address are ignored; a second address of an already-connected
   * node is parked until the first link drops. An address that can never be
   * dialed (a port outside 1-65535, a URL or host:port as the host) is
   * refused at once (an INVALID_ARGUMENT refusal event, never dialed), as the
   * `peers` option refuses it; not thrown, because the ToolDb guide's samples
   * pass what a discovery channel announced straight in, from a handler with
   * no catch, and a stranger's mDNS answer can carry port 0.
   */
  connectTo(host: string, port: number, opts: ConnectOptions = {}): void {
    let address: { host: string; port: number };
    try {
      address = checkPeerAddress(host, port, (part) => `connectTo: ${part}`);
    } catch (err) {
      const reason = errorText(err);
      this.log("not dialed: %s", reason);
      this.host.refused({ code: ErrorCode.INVALID_ARGUMENT, reason, host: typeof host === "string" ? host.slice(0, 253) : undefined });
      return;
    }
    if (!this.canDial) this.log("cannot dial %s:%d: this transport does not dial addresses", address.host, address.port);
    else if (!this.closing) this.dialer.connect(address.host, address.port, opts);
  }

  /** Stops keeping a link to host:port and closes it if open. */
  disconnectFrom(host: string, port: number): void {
    if (typeof host !== "string") return; // never a dial target (connectTo refuses it): nothing to stop, as for any address not dialed
    const target = this.dialer.forget(host, port);
    if (!target) return;
    this.links.closeTarget(target, CloseCode.NORMAL, "disconnect requested");
  }

  /** A client forgave the server at host:port one drop as unresponsive (src/node/server-standing.ts): redialed one step sooner after the next. */
  forgiveUnresponsive(host: string, port: number): void {
    this.dialer.forgiveUnresponsive(host, port);
  }

  /** Dial targets and their states, for status pages and tests. */
  dialTargets(): Array<{ host: string; port: number; state: string; address?: string; failures: number; unresponsive: number }> {
    return this.dialer.list();
  }

  /** A transport of this composite closed: when no open one dials addresses, the dial targets are given up (a closed transport does not open again). */
  private transportClosed(): void {
    if (!this.closing && !this.canDial) this.dialer.dropAll(NO_DIALER);
  }

  private openTarget(target: DialTarget): void {
    if (!this.canDial) return this.dialer.dropAll(NO_DIALER);
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
    const connection = new StreamConnection(stream, { transport: "stream", ...info, outgoing }, this.carrierOptions());
    this.attach(connection);
    return connection;
  }

  /** What a stream or data-channel carrier of this transport is made with: its limits and the transport's heartbeat sweep. */
  protected carrierOptions(): StreamConnectionOptions {
    const { heartbeatInterval, maxMessageBytes } = this.host.options;
    return { heartbeatInterval, maxMessageBytes, heartbeat: this.heartbeat, clock: this.clock, inbound: this.inbound };
  }

  /**
   * A listening transport accepted a raw socket: false when it must be
   * destroyed at once (the socket budget is full of links). Counted until it
   * emits 'close'. Transports whose sockets hold file descriptors call it.
   */
  protected acceptSocket(socket: { destroy(): void; once(event: "close", listener: () => void): unknown }, remoteHost?: string, remotePort?: number): boolean {
    const budget = this.sessionOwner.guard.sockets;
    const refused = (reason: string) => this.host.refused({ code: ErrorCode.CONNECTION_LIMIT, reason, host: remoteHost, port: remotePort });
    const refusal = budget.accept(socket, refused);
    if (refusal) {
      refused(refusal);
      return false;
    }
    socket.once("close", () => budget.closed(socket));
    return true;
  }

  /** The accepted socket carries a link now (see acceptSocket). */
  protected socketLinked(socket: object): void {
    this.sessionOwner.guard.sockets.linked(socket as { destroy(): void });
  }

  /** Hands a new transport link to the protocol. Transports call this for incoming links. */
  protected attach(connection: Connection, target?: DialTarget): void {
    if (this.closing) {
      connection.close(CloseCode.GOING_AWAY, "node closing");
      return;
    }
    if (this.upstream) return this.upstream.attach(this.carry(connection), target);
    this.links.attach(connection, target);
  }

  /** Keeps `connection` among this transport's links until it closes. */
  private carry(connection: Connection): Connection {
    if (connection.closed || this.carried.has(connection)) return connection;
    this.carried.add(connection);
    connection.once("close", () => this.carried.delete(connection));
    return connection;
  }

  /** Counts an invalid message (e.g. a refused record) against a peer; drops it past the strike limit. */
  strikePeer(session: PeerSession, code: ErrorCode, reason: string, key?: string): void {
    this.links.strikePeer(session, code, reason, key);
  }

  /** Asks a linked server for the servers it knows now (clients pick up servers that appeared later); resolves whether the ping went out. */
  requestServers(session: PeerSession): Promise<boolean> {
    return this.links.requestServers(session);
  }

  // ---- routing helpers -------------------------------------------------

  get peers(): PeerSession[] {
    return [...this.links.sessions.values()];
  }

  /** How many sessions are open (without copying them, as `peers` does). */
  get peerCount(): number {
    return this.links.sessions.size;
  }

  /** The sessions of the peers that said they are servers: a live view, not a copy (a relay walks it per record). */
  get serverPeers(): Iterable<PeerSession> {
    return this.links.serverSessions.values();
  }

  session(clientId: string): PeerSession | undefined {
    return this.links.sessions.get(clientId);
  }

  /** tool-db compatible: this node's client id. */
  getClientAddress(): string {
    return clientIdOf(this.host.nodeAddress());
  }

  isConnected(clientId: string): boolean {
    return this.links.sessions.has(clientId);
  }

  isServer(clientId: string): boolean {
    return this.links.sessions.get(clientId)?.isServer ?? false;
  }

  /**
   * Sends to every session not already in `to`, optionally filtered; the
   * frame is serialised once. Returns how many peers it went to.
   */
  sendToAll(message: OutgoingMessage, filter?: (s: PeerSession) => boolean): number {
    return this.sendToEach(this.links.sessions.values(), message, filter);
  }

  /** `sendToAll` for the peers that said they are servers only, without walking the clients' sessions. */
  sendToServers(message: OutgoingMessage, filter?: (s: PeerSession) => boolean): number {
    return this.sendToEach(this.links.serverSessions.values(), message, filter);
  }

  private sendToEach(sessions: Iterable<PeerSession>, message: OutgoingMessage, filter: ((s: PeerSession) => boolean) | undefined): number {
    const to = boundHops(message.to ?? [], this.getClientAddress());
    let frame: string | undefined;
    let count = 0;
    for (const session of sessions) {
      if (to.includes(session.clientId)) continue;
      if (filter && !filter(session)) continue;
      frame ??= JSON.stringify({ ...message, to });
      if (!session.sendRaw(frame, message.type)) {
        this.log("not sent: a %s frame of %d characters is over what peers accept (%d bytes)", message.type, frame.length, this.options.maxMessageBytes);
        return 0;
      }
      count++;
    }
    if (count > 0) this.traffic.out(message.type, count);
    return count;
  }

  sendToClientId(clientId: string, message: OutgoingMessage): boolean {
    const session = this.links.sessions.get(clientId);
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
