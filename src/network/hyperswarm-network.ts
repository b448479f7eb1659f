/// <reference path="../../types/hyperswarm.d.ts" preserve="true" />
import HyperDHT, { type HyperDhtNodeAddress, type KeyPair } from "hyperdht";
import Hyperswarm, { type PeerDiscovery, type PeerInfo, type SwarmSocket } from "hyperswarm";
import type { TimerHandle } from "../base/clock.js";
import { ErrorCode, ToolDbError, describeValue, errorText } from "../base/errors.js";
import { CloseCode, type Connection } from "./connection.js";
import type { PeerSession } from "./peer-session.js";
import { type NetworkAdapterConstructor, ToolDbNetworkAdapter, notSupported, withOptions } from "./network-adapter.js";
import type { NetworkHost } from "./network-host.js";
import { SwarmDuplicates } from "./swarm-duplicates.js";
import { SwarmBans } from "./swarm-bans.js";
import { SwarmSlots } from "./swarm-slots.js";
import { DEFAULT_SHUN_TIMINGS, SwarmShuns } from "./swarm-shuns.js";
import { evictionRefusal } from "./link-guard.js";
import { HYPERDHT_BOOTSTRAP_ENV, defaultDhtHost, hyperdhtBootstrapFromEnv, toAddress, topicKey } from "./hyperswarm-bootstrap.js";

export { HYPERDHT_BOOTSTRAP_ENV, defaultDhtHost, hyperdhtBootstrapFromEnv, topicKey };

/** hyperswarm's own default for `maxPeers`. */
const DEFAULT_MAX_PEERS = 64;

/** See HyperswarmNetworkOptions.replaceTimeout. */
const DEFAULT_REPLACE_TIMEOUT_MS = 30_000;

/** See HyperswarmNetworkOptions.closeTimeout. */
const DEFAULT_CLOSE_TIMEOUT_MS = 500;

export interface HyperswarmNetworkOptions {
  /** HyperDHT bootstrap nodes ("host:port" or {host, port}). Default: TOOLDB_HYPERDHT_BOOTSTRAP, else hyperdht's public nodes. */
  bootstrap?: Array<string | HyperDhtNodeAddress>;
  /** UDP bind address of the HyperDHT node (default: 127.0.0.1 for a loopback bootstrap, else all interfaces). */
  dhtHost?: string;
  /** An existing HyperDHT node to run the swarm on; the swarm destroys it on close. */
  dht?: HyperDHT;
  /** The swarm's Noise key pair (default: a fresh one). Not the ToolDb identity. */
  keyPair?: KeyPair;
  /** Announce the topic (accept connections). Default: the node's `server` option. */
  announce?: boolean;
  /**
   * Hyperswarm looks a topic up once, then every ~10 minutes: a server that
   * announced a moment later stays unseen. The topic is looked up again after
   * `refreshInterval` ms (default 1000), doubling up to `maxRefreshInterval`
   * (default 60000), and again at once (at most once per refreshInterval)
   * when a link is lost.
   */
  refreshInterval?: number;
  maxRefreshInterval?: number;
  /**
   * How long close() lets hyperswarm leave gracefully (unannounce the topic,
   * let a lookup or announce in flight end) before it destroys the HyperDHT
   * node outright (`destroy({ force: true })`), in ms. Default 500: a DHT
   * that does not answer (offline, dead bootstrap) held close for 3-22 s.
   */
  closeTimeout?: number;
  /** Most swarm links at once, hyperswarm's `maxPeers` (default 64). */
  maxPeers?: number;
  /**
   * ms per swarm slot rotation of a client that does not announce the topic
   * (default 60000; 0 or Infinity: never): while its `maxPeers` slots are
   * full, a link held a whole interval whose peer delivered no record this
   * node asked for within `meritWindow` is replaced (see `replaceTimeout`),
   * its peer not dialed for 10 rotations (swarm-slots.ts).
   */
  rotateInterval?: number;
  /**
   * A rotation is make before break: the swarm may dial one link over
   * `maxPeers`, and the link rotated out is closed only once a link dialed
   * since is up as a server. With none within `replaceTimeout` ms (default
   * 30000) the rotation is abandoned and the old link kept.
   */
  replaceTimeout?: number;
  /** A peer that delivered a record this node asked for within this many ms keeps its swarm slot (default 600000). */
  meritWindow?: number;
  /**
   * A client that does not announce the topic keeps a peer it dialed away
   * for a while when its link closes for a handshake not finished in time or
   * requests left unanswered (swarm-shuns.ts): `shunMs` (default 4000) the
   * first time, doubling per offence within `shunForgiveMs` (default 600000)
   * of the last, up to `maxShunMs` (default 60000). A peer that says it is
   * no server is kept away `maxShunMs` at once.
   */
  shunMs?: number;
  maxShunMs?: number;
  shunForgiveMs?: number;
}

/**
 * Hyperswarm transport: joins sha256(topic) (servers as server and client,
 * clients as client only) and runs every Hyperswarm connection through the
 * stream bridge, so it gets the same handshake, heartbeat and refusals as
 * WebSocket. It cannot dial host:port; peers are whoever shares the topic.
 * Use `HyperswarmNetwork.with({ bootstrap })` to pass options.
 */
export class HyperswarmNetwork extends ToolDbNetworkAdapter {
  private swarm: Hyperswarm | undefined;
  private discovery: PeerDiscovery | undefined;
  private joinedPromise: Promise<void> | undefined;
  private lastRefresh = Number.NEGATIVE_INFINITY;
  private refreshing = false;
  /** Look the topic up again once the lookup in flight ends (a shun ended during it). */
  private refreshAgain = false;
  private refreshTimer: TimerHandle | undefined;
  /** The swarm's record of each peer this node dialed, by its link (to shun the peer). */
  private readonly dialed = new WeakMap<Connection, PeerInfo>();
  /** Why each peer is banned in hyperswarm (one flag a peer, several reasons). */
  private readonly bans = new SwarmBans();
  private readonly duplicates = new SwarmDuplicates(this.bans, this.log);
  /** A non-announcing client's swarm slots, rotated on merit (swarm-slots.ts). */
  private readonly slots: SwarmSlots;
  /** Peers a non-announcing client dialed and keeps away for a growing while (swarm-shuns.ts). */
  private readonly shuns: SwarmShuns;

  /** An adapter class bound to `options`, for `networkAdapter`. A bad bootstrap entry or bound throws INVALID_ARGUMENT here. */
  static with(options: HyperswarmNetworkOptions): NetworkAdapterConstructor {
    options.bootstrap?.forEach(toAddress);
    const bound = options.closeTimeout;
    if (bound !== undefined && !(typeof bound === "number" && Number.isFinite(bound) && bound >= 0)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `closeTimeout must be a finite number of ms >= 0, got ${describeValue(bound)}`);
    }
    const peers = options.maxPeers;
    if (peers !== undefined && !(Number.isInteger(peers) && peers >= 1)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `maxPeers must be an integer >= 1, got ${describeValue(peers)}`);
    }
    // 0 (off, for rotateInterval) up to a timer's range; Infinity also means off.
    for (const [name, value] of [["rotateInterval", options.rotateInterval], ["meritWindow", options.meritWindow]] as const) {
      if (value !== undefined && !(typeof value === "number" && value >= 0 && (value <= 2 ** 31 - 1 || value === Infinity))) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${name} must be a number of ms from 0 to 2147483647 or Infinity, got ${describeValue(value)}`);
      }
    }
    // Timer lengths: past a timer's range Node fires after 1 ms.
    for (const [name, value] of [["shunMs", options.shunMs], ["maxShunMs", options.maxShunMs], ["shunForgiveMs", options.shunForgiveMs], ["replaceTimeout", options.replaceTimeout]] as const) {
      if (value !== undefined && !(typeof value === "number" && value >= 0 && value <= 2 ** 31 - 1)) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${name} must be a number of ms from 0 to 2147483647, got ${describeValue(value)}`);
      }
    }
    return withOptions(HyperswarmNetwork, options);
  }

  constructor(
    host: NetworkHost,
    private readonly swarmOptions: HyperswarmNetworkOptions = {},
  ) {
    super(host, "network:hyperswarm");
    this.slots = new SwarmSlots(
      {
        full: () => (this.swarm?.connections.size ?? 0) >= this.maxPeers,
        canDialAnother: () => this.knowsAnotherPeer(),
        dialing: () => (this.swarm?.connecting ?? 0) > 0,
        rotateOut: (connection, session) => this.rotateOut(connection, session),
        refresh: () => this.refresh(),
        widen: (on) => this.widen(on),
        overCap: () => Math.max(0, (this.swarm?.connections.size ?? 0) - this.maxPeers),
        closeExtra: (connection) => connection.close(CloseCode.NORMAL, "no swarm slot: the rotation it was dialed for ended"),
        setTimeout: (fn, ms) => this.timers.setTimeout(fn, ms),
        clearTimeout: (handle) => this.timers.clearTimeout(handle),
        log: this.log,
      },
      this.bans,
      this.swarmOptions.meritWindow ?? 600_000,
      () => this.now(),
      this.swarmOptions.replaceTimeout ?? DEFAULT_REPLACE_TIMEOUT_MS,
    );
    const o = this.swarmOptions;
    const d = DEFAULT_SHUN_TIMINGS;
    const first = o.shunMs ?? d.first;
    this.shuns = new SwarmShuns(
      this.bans,
      { first, max: Math.max(first, o.maxShunMs ?? d.max), forgive: o.shunForgiveMs ?? d.forgive },
      { now: () => this.now(), setTimeout: (fn, ms) => this.timers.setTimeout(fn, ms), clearTimeout: (h) => this.timers.clearTimeout(h) },
      // The shun is over: look the topic up again (rate-limited), so the peer is dialed soon rather than at the next refresh.
      () => this.refreshAfterShun(),
    );
  }

  override get canDial(): boolean {
    return false;
  }

  /** The running swarm (after start), e.g. for its key pair or stats. */
  get hyperswarm(): Hyperswarm | undefined {
    return this.swarm;
  }

  /** Resolves once the topic is announced (servers) or first looked up (clients). */
  get joined(): Promise<void> {
    return this.joinedPromise ?? Promise.resolve();
  }

  protected dial(): Connection {
    return notSupported("dialing host:port over Hyperswarm");
  }

  protected async listen(): Promise<void> {
    const o = this.swarmOptions;
    const bootstrap = (o.bootstrap ?? hyperdhtBootstrapFromEnv())?.map(toAddress);
    const host = o.dhtHost ?? defaultDhtHost(bootstrap);
    const dht = o.dht ?? new HyperDHT({ bootstrap, ...(host ? { host } : {}) });
    const swarm = new Hyperswarm({ dht, keyPair: o.keyPair, maxPeers: this.maxPeers });
    this.swarm = swarm;
    swarm.on("connection", (socket: SwarmSocket, info: PeerInfo) => this.onSocket(socket, info));
    swarm.on("error", (err: Error) => this.log("swarm error: %s", errorText(err)));
    const announce = o.announce ?? this.host.options.server;
    this.discovery = swarm.join(topicKey(this.host.topic), { server: announce, client: true });
    this.joinedPromise = this.discovery.flushed().catch((err) => this.log("join failed: %s", errorText(err)));
    this.scheduleRefresh(this.refreshInterval);
    // A lost link (on any transport) may be replaceable over Hyperswarm: look the topic up again.
    this.sessionOwner.on("duplicate", (e) => this.duplicates.duplicate(e.peer, e.connection));
    this.sessionOwner.on("session-close", (session) => {
      this.duplicates.sessionClosed(session);
      this.refresh();
      this.scheduleRefresh(this.refreshInterval);
    });
    this.sessionOwner.on("session-open", (session) => {
      this.slots.sessionOpened(session);
      this.checkDialed(session);
    });
    const rotate = o.rotateInterval ?? 60_000;
    if (this.shunsStrangers && rotate > 0 && Number.isFinite(rotate)) this.timers.every(rotate, () => this.slots.tick());
    this.log("joined topic %s as %s", this.host.topic, announce ? "server+client" : "client");
  }

  private onSocket(socket: SwarmSocket, info?: PeerInfo): void {
    if (this.isClosed) {
      socket.destroy();
      return;
    }
    socket.on("error", () => undefined); // StreamConnection reports; hyperswarm closes
    const raw = socket.rawStream;
    this.log("swarm connection %s %s:%s", socket.isInitiator ? "to" : "from", raw?.remoteHost, raw?.remotePort);
    const connection = this.attachStream(socket, { outgoing: socket.isInitiator, remoteHost: raw?.remoteHost, remotePort: raw?.remotePort, transport: "hyperswarm" });
    if (info) connection.on("close", (code: number) => this.duplicates.swarmClosed(connection, info, code));
    if (!socket.isInitiator || !info || !this.shunsStrangers) return;
    this.dialed.set(connection, info);
    this.slots.dialed(connection, info);
    connection.on("close", (code: number) => {
      if (code === CloseCode.HANDSHAKE_TIMEOUT) this.shun(info, "it did not finish the handshake");
      // Dropped by the server watch: dialing it again at once would give it its slot back.
      else if (code === CloseCode.UNRESPONSIVE) this.shun(info, "it left what this node asked unanswered");
    });
  }

  /**
   * Only a client that does not announce the topic shuns the peers it
   * dialled: its 64 dial slots are how it reaches a server at all. A
   * hyperswarm ban also refuses the peer's own connections, so a server
   * (which takes clients, some of them announcing for a client mesh) and
   * a client that announces itself (`announce: true`) shun nobody; a
   * server's mesh bounds what it keeps of swarm-dialled links instead
   * (mesh-ranking.ts).
   */
  private get shunsStrangers(): boolean {
    return !this.host.options.server && !(this.swarmOptions.announce ?? false);
  }

  /** A peer this node dialed from the topic says it is no server: it has no business announcing the topic. */
  private checkDialed(session: PeerSession): void {
    const info = this.dialed.get(session.connection);
    if (!info || session.isServer) return;
    this.shun(info, "it announced the topic but is no server", true);
    session.connection.close(CloseCode.BAD_PEER, "only servers announce this topic");
  }

  /**
   * Whether the swarm knows a peer (an announcer the lookup found) it is not
   * linked to, has not banned, and did not try without ever reaching (a
   * stale announce: the server rotated out for one came back, and was
   * rotated out again for it after each probation).
   */
  private knowsAnotherPeer(): boolean {
    const swarm = this.swarm;
    if (!swarm) return false;
    const linked = new Set([...swarm.connections].map((socket) => socket.remotePublicKey.toString("hex")));
    for (const [key, info] of swarm.peers) if (!info.banned && !linked.has(key) && !(info.disconnectedTime > 0 && !info.proven)) return true;
    return false;
  }

  private get maxPeers(): number {
    return this.swarmOptions.maxPeers ?? DEFAULT_MAX_PEERS;
  }

  /**
   * A rotation began (`on`: one link over the cap may be dialed) or ended. Hyperswarm reads `maxPeers` at each dial but
   * drains its queue only when a lookup queues a new peer or a link ends: drained here (hyperswarm 4's own method).
   */
  private widen(on: boolean): void {
    const swarm = this.swarm as (Hyperswarm & { maxPeers: number; _attemptClientConnections?: () => void }) | undefined;
    if (!swarm) return;
    swarm.maxPeers = this.maxPeers + (on ? 1 : 0);
    if (on && typeof swarm._attemptClientConnections === "function") swarm._attemptClientConnections();
  }

  /** A link swarm-slots.ts rotated out of its slot: reported, then closed. */
  private rotateOut(connection: Connection, session: PeerSession | undefined): void {
    const { code, closeCode, reason } = evictionRefusal(
      `rotated out of its swarm slot at the cap of ${this.maxPeers} links: it delivered nothing this node asked for lately, and a server was linked in its place`,
    );
    this.host.refused({ code, reason, peer: session?.clientId, host: session?.host, port: session?.port });
    connection.close(closeCode, reason);
  }

  /** Not dialed again for a while (swarm-shuns.ts; `severe`: the longest wait at once): its peer slot goes to another announcer. */
  private shun(info: PeerInfo, why: string, severe = false): void {
    if (this.isClosed) return;
    const ms = this.shuns.shun(info, severe);
    this.log("not dialing swarm peer %s for %d ms: %s", info.publicKey.toString("hex").slice(0, 16), ms, why);
  }

  /**
   * A shun ended: look the topic up again, so the peer is dialed soon (a
   * lookup while it was banned did not queue it). A lookup in flight may have
   * met the peer already: another follows it.
   */
  private refreshAfterShun(): void {
    if (this.refreshing) this.refreshAgain = true;
    else this.refresh();
    this.scheduleRefresh(this.refreshInterval);
  }

  private get refreshInterval(): number {
    return this.swarmOptions.refreshInterval ?? 1000;
  }

  private scheduleRefresh(delay: number): void {
    this.timers.clearTimeout(this.refreshTimer);
    this.refreshTimer = this.timers.setTimeout(() => {
      this.refresh();
      this.scheduleRefresh(Math.min(delay * 2, this.swarmOptions.maxRefreshInterval ?? 60_000));
    }, delay);
  }

  /** Looks the topic up again (at most once per refreshInterval). */
  refresh(): void {
    const discovery = this.discovery;
    if (!discovery || this.isClosed || this.refreshing) return;
    const now = this.now();
    if (now - this.lastRefresh < this.refreshInterval) return;
    this.lastRefresh = now;
    this.refreshing = true;
    discovery
      .refresh({ server: this.swarmOptions.announce ?? this.host.options.server, client: true })
      .catch((err) => this.log("refresh failed: %s", errorText(err)))
      .finally(() => {
        this.refreshing = false;
        if (!this.refreshAgain) return;
        this.refreshAgain = false;
        this.refresh();
      });
  }

  /**
   * hyperswarm's destroy() unannounces the topic and waits for the lookup
   * or announce in flight, and hyperdht's server close for the announcer's
   * first findPeer query: each ends only when the DHT answers or its
   * requests time out. After `closeTimeout` the HyperDHT node is destroyed
   * with `force`, which fails every request in flight (and closes its UDP
   * sockets), so the graceful destroy ends at once.
   */
  protected async _close(): Promise<void> {
    const swarm = this.swarm;
    this.swarm = undefined;
    this.discovery = undefined;
    this.duplicates.clear();
    this.slots.clear();
    this.shuns.clear();
    if (!swarm) return;
    for (const socket of swarm.connections) socket.destroy();
    const graceful = swarm.destroy();
    const ms = this.swarmOptions.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT_MS;
    let bound: TimerHandle | undefined;
    const timedOut = new Promise<boolean>((resolve) => (bound = this.timers.setTimeout(() => resolve(true), ms)));
    try {
      if (await Promise.race([graceful.then(() => false, () => false), timedOut])) {
        this.log("the HyperDHT did not let go within %d ms: destroying it", ms);
        await swarm.dht.destroy({ force: true });
      }
    } finally {
      this.timers.clearTimeout(bound);
    }
    await graceful;
  }
}

/**
 * Hyperswarm with this package's default bootstrap: TOOLDB_HYPERDHT_BOOTSTRAP
 * when set (a private HyperDHT), else hyperdht's public nodes. Otherwise the
 * `hyperswarm` class itself, so the guide's sample runs with its import changed.
 */
export class ToolDbHyperswarm extends Hyperswarm {
  constructor(opts: ConstructorParameters<typeof Hyperswarm>[0] = {}) {
    super(opts.dht ? opts : ToolDbHyperswarm.withDht(opts));
  }

  /** Hyperswarm has no bind-address option: a loopback bootstrap gets its own DHT on 127.0.0.1 (the swarm destroys it). */
  private static withDht(opts: ConstructorParameters<typeof Hyperswarm>[0] & object): ConstructorParameters<typeof Hyperswarm>[0] {
    const bootstrap = (opts.bootstrap ?? hyperdhtBootstrapFromEnv())?.map(toAddress);
    const host = defaultDhtHost(bootstrap);
    return host ? { ...opts, dht: new HyperDHT({ bootstrap, host }) } : { ...opts, bootstrap };
  }
}
