/**
 * The servers and clients of one simulated run, joined as DHTServer and
 * DHTClient join them: each node's shipping `DhtPeering` dials from the
 * candidate list that its real DHT lookup returned (servers within the
 * server mesh's degree bounds, with its address exchange; clients keep 2
 * links), over the in-memory transport.
 */
import { EventEmitter } from "node:events";
import type { ToolDb, ToolDbOptions } from "../src/index.js";
import type { PeerAddress } from "../src/discovery/peer-table.js";
import { DhtPeering, DEFAULT_DHT_DIAL_RETRIES, DEFAULT_PENALTY_MS, type PeerSource } from "../src/peering/dht-peering.js";
import type { ServerMeshOptions } from "../src/peering/server-mesh.js";
import { MemoryFabric, type MemoryConnection, type MemoryNetwork } from "./memory-network.js";
import { SimClock } from "./sim-clock.js";
import { createNode, serverPort, SIM_HOST, VerifyCounter, type SimWorld } from "./sim-node.js";

/** A fixed candidate list in DhtPeering's shape: what one DHT lookup returned. */
class ListPeerSource extends EventEmitter implements PeerSource {
  constructor(
    private readonly list: PeerAddress[],
    private readonly topic: string,
  ) {
    super();
  }

  peers(): PeerAddress[] {
    return this.list;
  }

  /** Reports every candidate, in the DHT's order, as the first lookup round does. */
  report(): void {
    for (const peer of this.list) this.emit("peer", this.topic, peer, "dht");
  }

  refresh(): boolean {
    return true;
  }

  forget(): boolean {
    return true;
  }
}

export interface SimNode {
  index: number;
  db: ToolDb;
  peering: DhtPeering;
  server: boolean;
  port: number;
  alive: boolean;
  joinedAt: number;
}

export interface MeshOptions {
  topic: string;
  delayMs: number;
  random: () => number;
  /** Server links below which a server dials more (DHTServer: 6) and links a client keeps (DHTClient: 2). */
  serverLinks: number;
  clientLinks: number;
  db?: Partial<ToolDbOptions>;
  /** The servers' mesh rotation (ServerMeshOptions; undefined: the shipping defaults). */
  rotation?: Pick<ServerMeshOptions, "rotateIntervalMs" | "redialLostMs">;
}

export class SimMesh {
  readonly clock: SimClock;
  readonly fabric: MemoryFabric;
  readonly world: SimWorld;
  readonly servers: SimNode[] = [];
  readonly clients: SimNode[] = [];
  private nextServer = 0;

  constructor(readonly options: MeshOptions) {
    this.clock = new SimClock(Date.now());
    this.fabric = new MemoryFabric(this.clock, options.delayMs);
    this.world = { clock: this.clock, fabric: this.fabric, topic: options.topic, random: options.random, verifications: new VerifyCounter(), db: options.db };
  }

  get liveServers(): SimNode[] {
    return this.servers.filter((s) => s.alive);
  }

  /** Starts a server that will dial from `candidates`; resolves when it listens (no virtual time passes). */
  async addServer(candidates: PeerAddress[]): Promise<SimNode> {
    const index = this.nextServer++;
    const port = serverPort(index);
    const node = await this.start(index, true, port, candidates, this.options.serverLinks);
    this.servers.push(node);
    return node;
  }

  async addClient(candidates: PeerAddress[]): Promise<SimNode> {
    const node = await this.start(this.clients.length, false, 0, candidates, this.options.clientLinks);
    this.clients.push(node);
    return node;
  }

  private async start(index: number, server: boolean, port: number, candidates: PeerAddress[], links: number): Promise<SimNode> {
    const db = createNode(this.world, server, port);
    await db.ready;
    const source = new ListPeerSource(candidates, this.options.topic);
    const peering = new DhtPeering(db, source, this.options.topic, {
      maxConnections: links,
      // As DHTServer: the mesh's lower degree bound is its maxConnections.
      mesh: server ? { minLinks: links, ...this.options.rotation } : undefined,
      dialRetries: DEFAULT_DHT_DIAL_RETRIES,
      penaltyMs: DEFAULT_PENALTY_MS,
      selfPort: server ? port : undefined,
      selfHosts: [SIM_HOST],
      random: this.options.random,
    });
    source.report();
    return { index, db, peering, server, port, alive: true, joinedAt: this.clock.now() };
  }

  /** Stops a node as a killed process would: its links close, its peers learn it one link delay later. */
  async kill(node: SimNode): Promise<void> {
    if (!node.alive) return;
    node.alive = false;
    node.peering.stop();
    await node.db.close();
  }

  /** Stops a node as a machine that went silent: nothing it sends arrives, not even its close; its peers' heartbeats notice. */
  async crash(node: SimNode): Promise<void> {
    if (!node.alive) return;
    this.fabric.cuts.crash(node.db.network as unknown as MemoryNetwork);
    await this.kill(node);
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers, ...this.clients].map((n) => this.kill(n)));
    await this.clock.advance(10 * this.options.delayMs);
  }

  /** Server links per live server (incoming and outgoing), and tree links. */
  linkCounts(): { links: number[]; eager: number[] } {
    const live = this.liveServers;
    return {
      links: live.map((s) => s.db.network.peers.filter((p) => p.isServer).length),
      eager: live.map((s) => s.db.broadcast.links.eager),
    };
  }

  /** Server links (counted once, at their dialer) between nodes that `sideOf` puts on different sides. */
  linksAcross(sideOf: (network: object) => number): number {
    let n = 0;
    for (const s of this.liveServers)
      for (const p of s.db.network.peers) {
        const far = (p.connection as unknown as MemoryConnection).peer?.owner;
        if (p.isServer && p.outgoing && far && sideOf(s.db.network) !== sideOf(far)) n++;
      }
    return n;
  }

  /** A server's address as the DHT would report it. */
  static address(index: number): PeerAddress {
    return { host: SIM_HOST, port: serverPort(index) };
  }
}
