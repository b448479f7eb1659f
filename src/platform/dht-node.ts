import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import { createLogger, type LogFn } from "../base/logger.js";
import { type PeerInfo } from "../node/tooldb.js";
import { ToolDb } from "./node.js";
import type { ToolDbOptions } from "../node/options.js";
import { LevelStore } from "../stores/level-store.js";
import { DhtPeering, DEFAULT_DHT_DIAL_RETRIES, DEFAULT_PENALTY_MS, type PeeringHooks } from "../peering/dht-peering.js";
import type { Discovery } from "../discovery/discovery.js";
import { type NodeDiscovery, createNodeDiscovery } from "./node-discovery.js";
import type { MergedDiscovery } from "../discovery/mechanisms/merged-discovery.js";
import type { PeerAddress } from "../discovery/peer-table.js";
import { localAddressesFor } from "../discovery/local-addresses.js";
import { urlEndpoint } from "../limits/peer-url.js";
import { HyperswarmNetwork, type HyperswarmNetworkOptions } from "../network/hyperswarm-network.js";
import { WebSocketNetwork } from "../network/websocket-network.js";
import { type DhtNodeOptions, checkDhtNodeOptions } from "./dht-node-options.js";

export type { DhtNodeOptions };

function transportsFor(hyperswarm: HyperswarmNetworkOptions | true | undefined): Partial<ToolDbOptions> {
  if (!hyperswarm) return {};
  return { networkAdapter: [WebSocketNetwork, HyperswarmNetwork.with(hyperswarm === true ? {} : hyperswarm)] };
}

/**
 * A ToolDb node whose peers come from the mainline DHT: shared by DHTServer
 * (announces and looks up) and DHTClient (looks up only).
 */
export abstract class DhtNode {
  readonly db: ToolDb;
  /** The mainline DHT discovery (undefined when `mechanisms.mainline` is false). */
  discovery: Discovery | undefined;
  private nodeDiscovery: NodeDiscovery | undefined;
  onPeerFound: (peer: PeerAddress) => void = () => undefined;
  onPeerConnected: (info: PeerInfo) => void = () => undefined;
  onPeerDisconnected: (info: PeerInfo) => void = () => undefined;
  /** A discovery mechanism could not start (e.g. "peer-cache" on a damaged `<dataDir>.peers`); the node goes on without it. */
  onMechanismFailed: (mechanism: string, error: unknown) => void = () => undefined;
  protected readonly log: LogFn;
  private peeringValue: DhtPeering | undefined;
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private releasePromise: Promise<void> | undefined;
  private discoveryStopped: Promise<void> | undefined;
  private readonly signalHandler = (signal: NodeJS.Signals) => {
    this.log("%s: shutting down", signal);
    void this.stop()
      .catch((err: unknown) => this.log("stopping after %s failed: %s", signal, errorText(err)))
      .then(() => this.options.onSignalStop?.(signal));
  };

  constructor(
    readonly topic: string,
    protected readonly options: DhtNodeOptions,
    dbOptions: Partial<ToolDbOptions>,
    component: string,
  ) {
    this.log = createLogger(component);
    checkDhtNodeOptions(options, dbOptions.server === true, this.defaultMaxConnections());
    const storage = options.dataDir ? { storageAdapter: LevelStore, storageName: options.dataDir } : {};
    this.db = new ToolDb({ topic, ...storage, ...transportsFor(options.hyperswarm), ...options.db, ...dbOptions });
    // One whole: closing the ToolDb by hand stops the DHT side too (stop() closes the ToolDb). Its close waits for this.
    this.db.onClose(() => {
      void this.startPromise?.catch(() => undefined); // a start() nobody awaits, cut short: no unhandled rejection
      return this.stopDiscovery();
    });
  }

  /** Announce this many ports (servers) or none (clients). */
  protected abstract announcePort(): number | undefined;
  protected abstract defaultMaxConnections(): number;

  /** What links this node to the servers discovery finds (after start): candidates, and a server's mesh. */
  get peering(): DhtPeering | undefined {
    return this.peeringValue;
  }

  /** Every discovery mechanism, merged: its `settled` event, its candidates' sources. Throws before `start()` resolved. */
  get merged(): MergedDiscovery {
    if (!this.nodeDiscovery) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "merged discovery: await start() first");
    return this.nodeDiscovery.merged;
  }

  /**
   * Idempotent. Resolves when the database is ready and the DHT join has
   * begun. When it fails (the port is taken, say) everything the node opened
   * is released before it rejects. After `stop()` it rejects with CLOSED: a
   * stopped node does not start again (make a new one). A start() cut short
   * by stop() (or by closing `db`) rejects with CLOSED too; once `db` is
   * closed (by hand, even after a start() that resolved) so does every start().
   */
  start(): Promise<void> {
    if (this.stopPromise) return Promise.reject(new ToolDbError(ErrorCode.CLOSED, `start() after stop(): a stopped ${this.constructor.name} does not start again (make a new one)`));
    if (this.db.isClosed) return Promise.reject(this.dbClosed());
    this.startPromise ??= this.doStart().catch(async (err: unknown) => {
      await this.release();
      throw err;
    });
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    await this.db.ready;
    if (this.stopPromise) throw new ToolDbError(ErrorCode.CLOSED, `start(): stop() came before the ${this.constructor.name} started`);
    // Its ToolDb closed by hand meanwhile: no DHT socket for a node that cannot link (start's catch releases the rest).
    if (this.db.isClosed) throw this.dbClosed();
    const port = this.announcePort();
    const nodeDiscovery = createNodeDiscovery(this.db, this.topic, {
      switches: this.options.mechanisms ?? {},
      mainline: { ...this.options.discovery, bootstrap: this.options.bootstrap, host: this.options.dhtHost ?? this.bindHost(), port: this.options.dhtPort ?? 0 },
      port,
    });
    this.nodeDiscovery = nodeDiscovery;
    this.discovery = nodeDiscovery.mainline;
    this.discovery?.on("warning", (err) => this.log("DHT warning: %s", err.message));
    this.discovery?.on("failure", (err) => this.log("DHT failure: %s", err.message));
    const hooks: PeeringHooks = {
      onPeerFound: (p) => this.onPeerFound(p),
      onPeerConnected: (i) => this.onPeerConnected(i),
      onPeerDisconnected: (i) => this.onPeerDisconnected(i),
    };
    const maxConnections = this.options.maxConnections ?? this.defaultMaxConnections();
    // Every mechanism started: the peer cache has offered the servers verified before (dialed first).
    let mechanismsStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (mechanismsStarted = resolve));
    this.peeringValue = new DhtPeering(
      this.db,
      nodeDiscovery.merged,
      this.topic,
      {
        maxConnections,
        dialRetries: this.options.dialRetries ?? DEFAULT_DHT_DIAL_RETRIES,
        penaltyMs: this.options.penaltyMs ?? DEFAULT_PENALTY_MS,
        maxDialsInFlight: this.options.maxDialsInFlight,
        dialStaggerMs: this.options.dialStaggerMs,
        firstContactTimeoutMs: this.options.firstContactTimeoutMs,
        rotateIntervalMs: this.options.rotateIntervalMs,
        meritWindowMs: this.options.meritWindowMs,
        mesh: { minLinks: maxConnections, ...this.options.mesh },
        holdStrangersUntil: started,
        selfPort: port,
        selfHosts: this.selfHosts(),
        random: this.db.options.random,
      },
      hooks,
    );
    nodeDiscovery.merged.on("mechanism-failed", (mechanism, error) => this.onMechanismFailed(mechanism, error));
    void nodeDiscovery.merged.start().then(mechanismsStarted, mechanismsStarted);
    if (this.options.handleSignals) {
      process.once("SIGINT", this.signalHandler);
      process.once("SIGTERM", this.signalHandler);
    }
  }

  /**
   * Whether `peer` is this node's own announce as the DHT reports it back
   * (its announced port on a local address or its public host); false
   * before start() and for clients, which announce nothing.
   */
  isOwnAddress(peer: PeerAddress): boolean {
    return this.peeringValue?.isSelf(peer) ?? false;
  }

  /** Addresses under which the DHT may report our own announce. */
  private selfHosts(): string[] {
    const { host, publicHost, publicUrl } = this.db.options;
    const advertised = [publicHost, publicUrl === undefined ? undefined : urlEndpoint(publicUrl).host].filter((h) => h !== undefined);
    // A wildcard bind is reachable on every local address; a specific one only on itself.
    return [...new Set([host, ...advertised, ...localAddressesFor(host), ...localAddressesFor(this.bindHost())])];
  }

  private dbClosed(): ToolDbError {
    return new ToolDbError(ErrorCode.CLOSED, `start(): the ${this.constructor.name}'s ToolDb was closed (stop() the ${this.constructor.name} instead)`);
  }

  protected bindHost(): string {
    return this.db.options.host;
  }

  /**
   * Idempotent: leaves the DHT, closes every socket and the store. Also
   * without `start()`: the constructor's ToolDb (a server's WebSocket port)
   * is closed. Closing `db` stops the node the same way. The ToolDb starts
   * closing at once (no event after this call); a start() under way settles
   * before stop() resolves: resolved if it had begun the DHT join, else
   * rejected with CLOSED. One still waiting for a store that never becomes
   * ready is abandoned (CLOSED): stop() does not wait for the store.
   */
  stop(): Promise<void> {
    this.stopPromise ??= Promise.all([this.release(), this.startPromise?.catch(() => undefined)]).then(() => undefined);
    return this.stopPromise;
  }

  /** Once: what stop() and a failed start() release. */
  private release(): Promise<void> {
    this.releasePromise ??= this.doRelease();
    return this.releasePromise;
  }

  private async doRelease(): Promise<void> {
    const closed = this.db.close(); // silent from here on; its close hook stops the DHT side first
    await this.stopDiscovery();
    await closed;
  }

  /** Once: the DHT side (signals, peering, discovery); from release(), or from the ToolDb's close hook. */
  private stopDiscovery(): Promise<void> {
    this.discoveryStopped ??= (async () => {
      process.off("SIGINT", this.signalHandler);
      process.off("SIGTERM", this.signalHandler);
      this.peeringValue?.stop();
      await this.nodeDiscovery?.stop();
    })();
    return this.discoveryStopped;
  }
}
