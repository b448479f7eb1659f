/**
 * The simulator's transport: links between nodes of one process, each frame
 * delivered after a fixed link delay on the injected clock, in order. It
 * implements only what a transport implements (dial, listen, close) under
 * the shipping `ToolDbNetworkAdapter`, so the handshake, limits, routing and
 * everything above run as they do on WebSocket.
 */
import type { Clock } from "../src/base/clock.js";
import { CloseCode, Connection, type ConnectionInfo } from "../src/network/connection.js";
import { ToolDbNetworkAdapter, withOptions, type NetworkAdapterConstructor } from "../src/network/network-adapter.js";
import type { NetworkHost } from "../src/network/network-host.js";

/** A frame arriving at a node (the simulator counts copies of a put with it). */
export type FrameObserver = (to: MemoryNetwork, frame: string, from: MemoryNetwork | undefined) => void;

/** Every listening node of a simulation, by "host:port", and the link delay between them. */
export class MemoryFabric {
  private readonly listeners = new Map<string, MemoryNetwork>();
  private nextEphemeral = 40_000;
  /** Frames and bytes delivered in all. */
  frames = 0;
  bytes = 0;
  observer: FrameObserver | undefined;

  constructor(
    readonly clock: Clock,
    /** One-way delay of every link, ms. */
    readonly delayMs: number,
  ) {}

  register(key: string, network: MemoryNetwork): void {
    if (this.listeners.has(key)) throw new Error(`address ${key} in use`);
    this.listeners.set(key, network);
  }

  unregister(key: string, network: MemoryNetwork): void {
    if (this.listeners.get(key) === network) this.listeners.delete(key);
  }

  lookup(host: string, port: number): MemoryNetwork | undefined {
    return this.listeners.get(`${host}:${port}`);
  }

  ephemeralPort(): number {
    this.nextEphemeral = this.nextEphemeral >= 65_000 ? 40_000 : this.nextEphemeral + 1;
    return this.nextEphemeral;
  }

  /** The transport class to give ToolDb (`networkAdapter`). */
  transport(): NetworkAdapterConstructor {
    return withOptions(MemoryNetwork, { fabric: this });
  }
}

/** One end of an in-memory link. */
export class MemoryConnection extends Connection {
  peer: MemoryConnection | undefined;
  /** When the last frame sent on this end arrives: later frames never overtake it. */
  private lastArrival = 0;

  constructor(
    info: ConnectionInfo,
    private readonly fabric: MemoryFabric,
    readonly owner: MemoryNetwork,
  ) {
    super({ ...info, transport: "memory" });
  }

  /** Delivers `fn` to the far end after the link delay, in order with earlier frames. */
  private later(fn: () => void): void {
    const clock = this.fabric.clock;
    const at = Math.max(clock.now() + this.fabric.delayMs, this.lastArrival);
    this.lastArrival = at;
    clock.setTimeout(fn, at - clock.now());
  }

  protected _send(frame: string): void {
    const peer = this.peer;
    if (!peer) return;
    this.later(() => {
      if (peer.closed) return;
      this.fabric.frames++;
      this.fabric.bytes += frame.length;
      this.fabric.observer?.(peer.owner, frame, this.owner);
      peer.emit("message", frame);
    });
  }

  protected _close(code: number, reason: string): void {
    const peer = this.peer;
    this.markClosed(code, reason);
    if (peer) this.later(() => peer.remoteClosed(code, reason));
  }

  /** The far end closed (or its node died): this end learns it one link delay later. */
  remoteClosed(code: number, reason: string): void {
    this.markClosed(code, reason);
  }
}

export interface MemoryNetworkOptions {
  fabric: MemoryFabric;
}

export class MemoryNetwork extends ToolDbNetworkAdapter {
  private readonly fabric: MemoryFabric;
  private readonly connections = new Set<MemoryConnection>();
  private listeningKey: string | undefined;
  private boundPort: number | undefined;

  constructor(host: NetworkHost, options: MemoryNetworkOptions) {
    super(host, "network:memory");
    this.fabric = options.fabric;
  }

  override get port(): number | undefined {
    return this.boundPort;
  }

  get address(): string {
    return this.host.options.host;
  }

  /** True for a server node (the simulator counts what servers receive). */
  get servesLinks(): boolean {
    return this.host.isServer;
  }

  protected async listen(): Promise<void> {
    const { server, host, port } = this.host.options;
    if (!server) return;
    this.boundPort = port || this.fabric.ephemeralPort();
    this.listeningKey = `${host}:${this.boundPort}`;
    this.fabric.register(this.listeningKey, this);
  }

  protected dial(host: string, port: number): Connection {
    const local = this.track(new MemoryConnection({ outgoing: true, remoteHost: host, remotePort: port }, this.fabric, this));
    const target = this.fabric.lookup(host, port);
    if (!target || target.isClosed) {
      // Nobody listens there (a server that left): refused one round trip later.
      this.fabric.clock.setTimeout(() => local.remoteClosed(1006, "connection refused"), 2 * this.fabric.delayMs);
      return local;
    }
    const remote = target.track(new MemoryConnection({ outgoing: false, remoteHost: this.address, remotePort: this.fabric.ephemeralPort() }, this.fabric, target));
    local.peer = remote;
    remote.peer = local;
    // The far end sees the link after one delay, as a TCP accept.
    this.fabric.clock.setTimeout(() => {
      if (local.closed) remote.remoteClosed(CloseCode.GOING_AWAY, "dialer gone");
      else target.accept(remote);
    }, this.fabric.delayMs);
    return local;
  }

  private track(connection: MemoryConnection): MemoryConnection {
    this.connections.add(connection);
    connection.once("close", () => this.connections.delete(connection));
    return connection;
  }

  private accept(connection: MemoryConnection): void {
    if (this.isClosed) connection.close(CloseCode.GOING_AWAY, "node closing");
    else this.attach(connection);
  }

  protected async _close(): Promise<void> {
    if (this.listeningKey) this.fabric.unregister(this.listeningKey, this);
    for (const connection of this.connections) connection.close(CloseCode.GOING_AWAY, "node closing");
    this.connections.clear();
  }
}
