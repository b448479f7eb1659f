import type { SyncProgress } from "../node/server-sync.js";
import type { ToolDb } from "../node/tooldb.js";
import type { Discovery } from "../discovery/discovery.js";
import { dhtNodeCount } from "../discovery/dht-watch.js";
import type { RefusalEvent } from "../network/network-host.js";

/** What `/healthz` answers (JSON), and what `tooldb-dht status` and SIGUSR1 print as one line. */
export interface HealthReport {
  /**
   * "ok" serving; "starting" before ready; "closed" after close;
   * "storage-failed" while the store refuses writes (disk full, I/O error:
   * see `storage`), reads still served. Only "ok" answers HTTP 200.
   */
  status: "ok" | "starting" | "closed" | "storage-failed";
  /** Present while the store refuses writes: the last failure's message. */
  storage?: { error: string };
  version: string;
  topic: string;
  uptimeSeconds: number;
  links: { servers: number; clients: number; unverified: number };
  storeKeys: number;
  subscriptions: number;
  refusals: number;
  /** Present when the node uses the DHT: nodes heard from (0 = offline or UDP blocked). */
  dht?: { nodes: number };
  sync: SyncProgress;
}

export interface HealthOptions {
  version: string;
  discovery?: Discovery;
  now?: () => number;
}

/** Follows a node for health reports (counts refusals from its start); `close` detaches. */
export class HealthMonitor {
  private refusals = 0;
  private ready = false;
  private readonly startedAt: number;
  private readonly onRefused = (e: RefusalEvent) => void (this.refusals += e.count ?? 1);
  private readonly now: () => number;

  constructor(
    private readonly db: ToolDb,
    private readonly opts: HealthOptions,
  ) {
    this.now = opts.now ?? (() => Date.now());
    this.startedAt = this.now();
    db.on("refused", this.onRefused);
    db.ready.then(
      () => (this.ready = true),
      () => undefined,
    );
  }

  report(): HealthReport {
    const db = this.db;
    const peers = db.network.peers;
    const servers = peers.filter((p) => p.isServer).length;
    const failure = db.store.writeFailure;
    return {
      status: db.isClosed ? "closed" : !this.ready ? "starting" : failure ? "storage-failed" : "ok",
      ...(failure && !db.isClosed ? { storage: { error: failure.message } } : {}),
      version: this.opts.version,
      topic: db.topic,
      uptimeSeconds: Math.round((this.now() - this.startedAt) / 1000),
      links: { servers, clients: peers.length - servers, unverified: db.network.guard.gate.counts.unverified },
      storeKeys: db.quota.size,
      subscriptions: db.remoteSubscriptions.total,
      refusals: this.refusals,
      ...(this.opts.discovery ? { dht: { nodes: dhtNodeCount(this.opts.discovery) } } : {}),
      sync: { ...db.syncProgress },
    };
  }

  close(): void {
    this.db.off("refused", this.onRefused);
  }
}

/** One line for humans: `ok v0.1.0 topic=T up 3m12s links 2 servers + 5 clients (1 in handshake) keys 1234 …`. */
export function statusLine(r: HealthReport): string {
  const parts = [
    `${r.status} v${r.version} topic=${JSON.stringify(r.topic)} up ${duration(r.uptimeSeconds)}`,
    `links ${r.links.servers} servers + ${r.links.clients} clients (${r.links.unverified} in handshake)`,
    `keys ${r.storeKeys}`,
    `subscriptions ${r.subscriptions}`,
    `refusals ${r.refusals}`,
  ];
  if (r.storage) parts.push(`storage failed: ${r.storage.error}`);
  if (r.dht) parts.push(r.dht.nodes > 0 ? `DHT ${r.dht.nodes} nodes` : "DHT: no node answered");
  if (r.sync.running > 0) parts.push(`syncing (${r.sync.keysFetched}/${r.sync.keysListed} keys)`);
  return parts.join(", ");
}

function duration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
