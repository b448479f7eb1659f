/// <reference path="../../types/hyperswarm.d.ts" preserve="true" />
import HyperDHT from "hyperdht";
import Hyperswarm, { type PeerDiscovery, type PeerInfo, type SwarmSocket } from "hyperswarm";
import type { TimerHandle } from "../base/clock.js";
import { errorText } from "../base/errors.js";
import { CloseCode, type Connection } from "./connection.js";
import type { PeerSession } from "./peer-session.js";
import { type NetworkAdapterConstructor, ToolDbNetworkAdapter, notSupported, withOptions } from "./network-adapter.js";
import type { StreamConnectionOptions } from "./stream-connection.js";
import type { NetworkHost } from "./network-host.js";
import { SwarmDuplicates } from "./swarm-duplicates.js";
import { SwarmBans } from "./swarm-bans.js";
import { SwarmSlots } from "./swarm-slots.js";
import { SwarmPick } from "./swarm-pick.js";
import { DEFAULT_SHUN_TIMINGS, SwarmShuns } from "./swarm-shuns.js";
import { evictionRefusal } from "./link-guard.js";
import { HYPERDHT_BOOTSTRAP_ENV, defaultDhtHost, hyperdhtBootstrapFromEnv, toAddress, topicKey } from "./hyperswarm-bootstrap.js";
import { type HyperswarmNetworkOptions, checkHyperswarmOptions } from "./hyperswarm-options.js";

export { HYPERDHT_BOOTSTRAP_ENV, defaultDhtHost, hyperdhtBootstrapFromEnv, topicKey };
export type { HyperswarmNetworkOptions };

/** hyperswarm's own default for `maxPeers`. */
const DEFAULT_MAX_PEERS = 64;

/** See HyperswarmNetworkOptions.replaceTimeout. */
const DEFAULT_REPLACE_TIMEOUT_MS = 30_000;

/** See HyperswarmNetworkOptions.closeTimeout. */
const DEFAULT_CLOSE_TIMEOUT_MS = 500;

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
  /** The peer a rotation dials: the fewest dials first, not hyperswarm's queue order (swarm-pick.ts). */
  private readonly pick: SwarmPick;

  /** An adapter class bound to `options`, for `networkAdapter`. A bad bootstrap entry or bound throws INVALID_ARGUMENT here. */
  static with(options: HyperswarmNetworkOptions): NetworkAdapterConstructor {
    checkHyperswarmOptions(options);
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
        canDialAnother: () => this.pick.knowsAnother(),
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
    const random = host.options.random ?? Math.random;
    this.pick = new SwarmPick({
      swarm: () => this.swarm, cap: () => this.maxPeers, random, log: this.log,
      failed: (info) => this.shun(info, "dialed for a rotation, it could not be reached"),
      fallback: () => this.widenQueue(),
    });
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
    swarm.on("update", () => this.pick.update());
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
    this.pick.linked(info);
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

  /** A swarm link's options: the transport's, and how long a closing link lingers (`closeLinger`). */
  protected override carrierOptions(): StreamConnectionOptions {
    return { ...super.carrierOptions(), lingerMs: this.swarmOptions.closeLinger };
  }

  private get maxPeers(): number {
    return this.swarmOptions.maxPeers ?? DEFAULT_MAX_PEERS;
  }

  /**
   * A rotation began (`on`: one link over the cap may be dialed) or ended. Its candidate is picked (swarm-pick.ts); when
   * none can be, hyperswarm's queue chooses: it reads `maxPeers` at each dial but drains its queue only when a lookup
   * queues a new peer or a link ends: drained here (hyperswarm 4's own method).
   */
  private widen(on: boolean): void {
    if (on) return this.pick.start();
    this.pick.stop();
    const swarm = this.swarm as (Hyperswarm & { maxPeers: number }) | undefined;
    if (swarm) swarm.maxPeers = this.maxPeers;
  }

  /** No candidate could be picked: hyperswarm's queue may dial one link over the cap. */
  private widenQueue(): void {
    const swarm = this.swarm as (Hyperswarm & { maxPeers: number; _attemptClientConnections?: () => void }) | undefined;
    if (!swarm) return;
    swarm.maxPeers = this.maxPeers + 1;
    if (typeof swarm._attemptClientConnections === "function") swarm._attemptClientConnections();
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
    this.pick.clear();
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
