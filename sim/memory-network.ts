/**
 * The simulator's transport: links between nodes of one process, each frame
 * delivered after a fixed link delay on the injected clock, in order. It
 * implements only what a transport implements (dial, listen, close, a
 * heartbeat of pings and pongs) under the shipping `ToolDbNetworkAdapter`,
 * so the handshake, limits, routing and everything above run as they do on
 * WebSocket. Paths can be cut (`FabricCuts`): a partition holds frames until
 * it heals, a crashed node swallows them.
 */
import type { Clock } from "../src/base/clock.js";
import { CloseCode, Connection, type ConnectionInfo } from "../src/network/connection.js";
import type { Heartbeat, HeartbeatSweep } from "../src/network/heartbeat-sweep.js";
import { ToolDbNetworkAdapter, withOptions, type NetworkAdapterConstructor } from "../src/network/network-adapter.js";
import type { NetworkHost } from "../src/network/network-host.js";
import { FabricCuts } from "./fabric-cuts.js";

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
  /** Pings and pongs delivered (not frames: a transport's control messages). */
  controls = 0;
  readonly cuts = new FabricCuts<MemoryNetwork>();
  /** Links holding frames while their path is cut. */
  private readonly holding = new Set<MemoryConnection>();

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

  hold(connection: MemoryConnection): void {
    this.holding.add(connection);
  }

  /** Ends the partition: every link sends what it held, in order, one link delay on. */
  heal(): void {
    this.cuts.heal();
    const held = [...this.holding];
    this.holding.clear();
    for (const connection of held) connection.release();
  }

  /** The transport class to give ToolDb (`networkAdapter`). */
  transport(): NetworkAdapterConstructor {
    return withOptions(MemoryNetwork, { fabric: this });
  }
}

/** One end of an in-memory link. */
export class MemoryConnection extends Connection implements Heartbeat {
  peer: MemoryConnection | undefined;
  /** When the last frame sent on this end arrives: later frames never overtake it. */
  private lastArrival = 0;
  /** Whether the peer was heard since the last heartbeat visit (as WsConnection's). */
  private alive = true;
  /** What was sent while the path was cut, in order: it goes out when the partition heals. */
  private held: Array<() => void> | undefined;

  constructor(
    info: ConnectionInfo,
    private readonly fabric: MemoryFabric,
    readonly owner: MemoryNetwork,
    private readonly heartbeat: HeartbeatSweep,
  ) {
    super({ ...info, transport: "memory" });
    heartbeat.add(this);
  }

  /** Delivers `fn` to the far end after the link delay, in order with earlier frames. */
  private later(fn: () => void): void {
    const clock = this.fabric.clock;
    const at = Math.max(clock.now() + this.fabric.delayMs, this.lastArrival);
    this.lastArrival = at;
    clock.setTimeout(fn, at - clock.now());
  }

  /** `later`, unless the path is cut: held until the partition heals, dropped when either node crashed. */
  private deliver(fn: () => void): void {
    const peer = this.peer;
    if (!peer) return;
    const cuts = this.fabric.cuts;
    if (!cuts.severed(this.owner, peer.owner)) return this.later(fn);
    if (cuts.isCrashed(this.owner) || cuts.isCrashed(peer.owner)) return;
    (this.held ??= []).push(fn);
    this.fabric.hold(this);
  }

  /** The partition healed: what was held goes out. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const fn of held) this.deliver(fn);
  }

  /** The peer showed a sign of life. */
  private lively(): void {
    this.alive = true;
    this.heard(this.heartbeat);
  }

  protected _send(frame: string): void {
    const peer = this.peer;
    this.deliver(() => {
      if (!peer || peer.closed) return;
      this.fabric.frames++;
      this.fabric.bytes += frame.length;
      this.fabric.observer?.(peer.owner, frame, this.owner);
      peer.lively();
      peer.emit("message", frame);
    });
  }

  /** Called by the sweep: no sign of life since the last visit closes the link, else a ping goes out. */
  beat(): void {
    if (!this.alive) {
      // As ws's terminate(): the peer learns it by a reset, once the path lets it through.
      this.held = undefined;
      this.closeWith(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout", 1006, "connection reset");
      return;
    }
    this.alive = false;
    const peer = this.peer;
    this.deliver(() => {
      if (!peer || peer.closed) return;
      this.fabric.controls++;
      peer.deliver(() => {
        if (this.closed) return;
        this.fabric.controls++;
        this.lively();
      });
    });
  }

  protected _close(code: number, reason: string): void {
    this.closeWith(code, reason, code, reason);
  }

  private closeWith(code: number, reason: string, peerCode: number, peerReason: string): void {
    const peer = this.peer;
    this.heartbeat.delete(this);
    this.markClosed(code, reason);
    if (peer) this.deliver(() => peer.remoteClosed(peerCode, peerReason));
  }

  /** The far end closed (or its node died): this end learns it one link delay later. */
  remoteClosed(code: number, reason: string): void {
    this.heartbeat.delete(this);
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
    const local = this.track(new MemoryConnection({ outgoing: true, remoteHost: host, remotePort: port }, this.fabric, this, this.heartbeat));
    const target = this.fabric.lookup(host, port);
    // A path that is cut (or a crashed host) answers nothing: the handshake's timeout or the heartbeat ends the link.
    if (target && this.fabric.cuts.severed(this, target)) return local;
    if (!target || target.isClosed) {
      // Nobody listens there (a server that left): refused one round trip later.
      this.fabric.clock.setTimeout(() => local.remoteClosed(1006, "connection refused"), 2 * this.fabric.delayMs);
      return local;
    }
    const remote = target.track(new MemoryConnection({ outgoing: false, remoteHost: this.address, remotePort: this.fabric.ephemeralPort() }, this.fabric, target, target.heartbeat));
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
