import type { ToolDb, PeerInfo } from "../node/tooldb.js";
import type { DialFailedEvent } from "../network/network-adapter.js";
import { CompositeNetwork } from "../network/composite-network.js";
import { HyperswarmNetwork } from "../network/hyperswarm-network.js";
import { Discovery } from "../discovery/discovery.js";
import { BootstrapListMechanism } from "../discovery/mechanisms/bootstrap-list-mechanism.js";
import { HyperdhtMechanism } from "../discovery/mechanisms/hyperdht-mechanism.js";
import { LanMechanism, type LanOptions } from "../discovery/mechanisms/lan-mechanism.js";
import { MainlineMechanism } from "../discovery/mechanisms/mainline-mechanism.js";
import type { DiscoveryMechanism } from "../discovery/mechanisms/mechanism.js";
import { MergedDiscovery } from "../discovery/mechanisms/merged-discovery.js";
import { PeerCache, type PeerCacheOptions } from "../discovery/mechanisms/peer-cache.js";
import type { DiscoveryOptions } from "../discovery/options.js";
import type { PeerAddress } from "../discovery/peer-table.js";

/** Which discovery mechanisms a DHTServer/DHTClient runs (all merged into one). */
export interface MechanismSwitches {
  /** BitTorrent mainline DHT. Default true. */
  mainline?: boolean;
  /** HyperDHT through the Hyperswarm transport. Default: on when the node runs HyperswarmNetwork. */
  hyperdht?: boolean;
  /**
   * LAN multicast DNS. Default off: it multicasts on the interface of
   * `lan.interface` (or the node's host), which must be multicast-capable.
   */
  lan?: boolean | LanOptions;
  /** Servers this node verified before, kept in `<storageName>.peers`. Default true. */
  peerCache?: boolean | PeerCacheOptions;
  /** A fixed list of server addresses. Default none. */
  peers?: PeerAddress[];
}

export interface NodeDiscoveryConfig {
  switches: MechanismSwitches;
  mainline: DiscoveryOptions;
  /** The port servers announce (undefined for clients). */
  port: number | undefined;
}

/** The running mechanisms of one node, merged, plus what links them to the node's events. */
export interface NodeDiscovery {
  merged: MergedDiscovery;
  mainline: Discovery | undefined;
  peerCache: PeerCache | undefined;
  stop(): Promise<void>;
}

function hyperswarmOf(db: ToolDb): HyperswarmNetwork | undefined {
  const network = db.network;
  if (network instanceof HyperswarmNetwork) return network;
  return network instanceof CompositeNetwork ? network.transport(HyperswarmNetwork) : undefined;
}

function isSpecific(host: string): boolean {
  return host !== "0.0.0.0" && host !== "::" && host !== "";
}

export function createNodeDiscovery(db: ToolDb, topic: string, config: NodeDiscoveryConfig): NodeDiscovery {
  const { switches, port } = config;
  const mechanisms: DiscoveryMechanism[] = [];
  let peerCache: PeerCache | undefined;
  if (switches.peerCache !== false) {
    const Store = db.options.storageAdapter;
    const store = new Store(db, `${db.options.storageName}.peers`);
    peerCache = new PeerCache(store, { now: () => db.now(), ...(typeof switches.peerCache === "object" ? switches.peerCache : {}) });
    mechanisms.push(peerCache); // first: cached servers are tried before anything else
  }
  if (switches.peers?.length) mechanisms.push(new BootstrapListMechanism(switches.peers));
  let mainline: Discovery | undefined;
  if (switches.mainline !== false) {
    mainline = new Discovery(config.mainline);
    mechanisms.push(new MainlineMechanism(mainline, topic, port));
  }
  const swarm = hyperswarmOf(db);
  if (swarm && switches.hyperdht !== false) mechanisms.push(new HyperdhtMechanism(swarm));
  if (switches.lan) {
    const host = db.options.publicHost ?? db.options.host;
    const lan: LanOptions = {
      ...(isSpecific(db.options.host) ? { interface: db.options.host } : {}),
      ...(port !== undefined ? { port, ...(isSpecific(host) ? { host } : {}) } : {}),
      clock: db.options.clock,
      ...(typeof switches.lan === "object" ? switches.lan : {}),
    };
    mechanisms.push(new LanMechanism(topic, lan));
  }
  const merged = new MergedDiscovery(topic, mechanisms);

  // The peer cache learns from verified links to servers this node dialed, and from failed dials.
  const dialable = (info: PeerInfo) => {
    const transport = db.network.session(info.peerId)?.connection.info.transport;
    return transport === "websocket" || transport === "tcp";
  };
  const onConnect = (info: PeerInfo) => {
    if (peerCache && info.isServer && info.outgoing && info.host && info.port && dialable(info)) peerCache.remember({ host: info.host, port: info.port }, info.address);
  };
  const onFailed = (e: DialFailedEvent) => peerCache?.failed({ host: e.host, port: e.port });
  db.on("peer-connect", onConnect);
  db.on("dial-failed", onFailed);
  return {
    merged,
    mainline,
    peerCache,
    stop: async () => {
      db.off("peer-connect", onConnect);
      db.off("dial-failed", onFailed);
      await merged.stop();
    },
  };
}
