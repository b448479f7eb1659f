import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ToolDb } from "../node/tooldb.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { Discovery } from "../discovery/discovery.js";
import { dhtNodeCount } from "../discovery/dht-watch.js";
import { verifyPoolStats } from "../crypto/ecdsa.js";
import type { HttpGuard } from "../limits/http-guard.js";
import { httpRefusals } from "./http-refusals.js";

export interface MetricsOptions {
  /** Register into this registry (default: a new one, so several nodes in one process stay apart). */
  registry?: Registry;
  /** Name prefix of this module's metrics. Default "tooldb_". */
  prefix?: string;
  /** Also collect prom-client's process and Node.js metrics (CPU, memory, event-loop lag). Default true. */
  defaultMetrics?: boolean;
  /** The node's DHT discovery, for routing-table and lookup metrics (DhtNode.discovery after start). */
  discovery?: Discovery;
}

export interface ToolDbMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition. */
  text(): Promise<string>;
  readonly contentType: string;
  /** Counts an HTTP front's refusals as `tooldb_http_refused_total{front,reason}` (the metrics server adds its own as "metrics"). */
  watchHttp(front: string, guard: HttpGuard): void;
  /** Detaches from the node (listeners, verifier observer); idempotent. */
  close(): void;
}

/**
 * Prometheus metrics of a node, on prom-client. Opt-in: the core never
 * imports this module (or prom-client); `tooldb-dht serve` turns it on.
 * Gauges and the message counters are read from the node when scraped, so
 * they cost nothing between scrapes.
 */
export function createMetrics(db: ToolDb, opts: MetricsOptions = {}): ToolDbMetrics {
  const registry = opts.registry ?? new Registry();
  const p = opts.prefix ?? "tooldb_";
  const registers = [registry];
  const network = db.network;
  const { discovery } = opts;
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  // A combination once seen stays at 0 when its last link closes: a dashboard sees 0, not a gap
  // (labels come from this code, never from peers: at most kinds x transports x directions series).
  const linkLabels = new Map<string, { kind: string; transport: string; direction: string }>();
  for (const kind of ["server", "client"]) for (const direction of ["in", "out"]) linkLabels.set(`${kind} websocket ${direction}`, { kind, transport: "websocket", direction });
  new Gauge({
    name: `${p}links`,
    help: "Verified links by peer kind, transport and direction",
    labelNames: ["kind", "transport", "direction"],
    registers,
    collect() {
      const counts = new Map<string, number>();
      for (const s of network.peers) {
        const labels = { kind: s.isServer ? "server" : "client", transport: s.connection.info.transport ?? "unknown", direction: s.outgoing ? "out" : "in" };
        const key = `${labels.kind} ${labels.transport} ${labels.direction}`;
        if (!linkLabels.has(key)) linkLabels.set(key, labels);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      for (const [key, labels] of linkLabels) this.set(labels, counts.get(key) ?? 0);
    },
  });
  gauge(`${p}links_unverified`, "Incoming links still in the handshake", () => network.guard.gate.counts.unverified);
  gauge(`${p}store_keys`, "Keys in the store", () => db.quota.size);
  gauge(`${p}subscriptions`, "Subscriptions held for peers", () => db.remoteSubscriptions.total);
  gauge(`${p}bans`, "Ban entries (identities and IPs, expired ones until touched)", () => network.guard.bans.size);
  gauge(`${p}intake_in_flight`, "Peer messages being handled now", () => network.guard.intake.inFlight);
  gauge(`${p}intake_queued_messages`, "Peer messages waiting for their peer's rate or a free slot", () => network.guard.intake.queuedFrames);
  gauge(`${p}sync_running`, "Server catch-ups running", () => db.syncProgress.running);
  gauge(`${p}sync_waiting`, "Reconciliation runs waiting for another link's run with the same peer to end", () => db.syncProgress.waiting);
  gauge(`${p}verify_threads`, "Signature verification threads this process may run (0: every check takes libuv's pool)", () => verifyPoolStats()?.threads ?? 0);
  counterOf(`${p}verify_thread_checks_total`, "Signature checks done by this process's verification threads (the rest took libuv's pool or the main thread)", () => {
    const stats = verifyPoolStats();
    return stats ? stats.verified - stats.helped : 0;
  });
  counterOf(`${p}verify_main_checks_total`, "Signature checks the main thread did itself while the verification threads were full", () => verifyPoolStats()?.helped ?? 0);

  counterFrom(`${p}messages_received_total`, "Messages received, by type", "type", () => network.traffic.received);
  counterFrom(`${p}messages_sent_total`, "Messages sent (one per peer), by type", "type", () => network.traffic.sent);
  counterFrom(`${p}sync_keys_total`, "Server catch-up keys: listed by peers, fetched, changed here; and catch-ups completed", "stage", () => {
    const s = db.syncProgress;
    return new Map([
      ["listed", s.keysListed],
      ["fetched", s.keysFetched],
      ["changed", s.keysChanged],
      ["completed_catchups", s.completed],
    ]);
  });
  counterFrom(`${p}sync_runs_total`, "Reconciliation runs between tooldb-dht servers that ended: by change feed, by ranges, by a copy of the peer's store (a new server's, or one resumed at its cursor), or incomplete", "mode", () => {
    const r = db.syncProgress.runs;
    return new Map([
      ["changes", r.changes],
      ["range", r.range],
      ["copy", r.copy],
      ["incomplete", r.incomplete],
    ]);
  });
  counterFrom(`${p}sync_records_total`, "Records reconciliation runs pushed to peers and fetched from them", "direction", () => {
    const s = db.syncProgress;
    return new Map([
      ["pushed", s.recordsPushed],
      ["fetched", s.recordsFetched],
    ]);
  });

  const refusals = new Counter({ name: `${p}refusals_total`, help: "Refused frames, records, links and requests, by code", labelNames: ["code"], registers });
  const onRefused = (e: RefusalEvent) => refusals.inc({ code: e.code }, e.count ?? 1);
  db.on("refused", onRefused);

  const http = httpRefusals(registry, p);

  const verify = new Histogram({
    name: `${p}verify_seconds`,
    help: "Record verification time (shape, hash, ECDSA signature), by result",
    labelNames: ["result"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers,
  });
  db.verifier.observer = (seconds, verdict) => verify.observe({ result: verdict.result }, seconds);

  const detach: Array<() => void> = [() => db.off("refused", onRefused)];
  if (discovery) {
    gauge(`${p}dht_routing_table_nodes`, "DHT nodes this node has heard from", () => dhtNodeCount(discovery));
    const lookups = new Counter({ name: `${p}dht_lookups_total`, help: "DHT lookup rounds, by outcome", labelNames: ["result"], registers });
    const announces = new Counter({ name: `${p}dht_announces_total`, help: "DHT announce rounds", registers });
    const onLookup = (_id: unknown, _nodes: number, err: Error | null) => lookups.inc({ result: err ? "error" : "ok" });
    const onAnnounce = () => announces.inc();
    discovery.on("lookup", onLookup);
    discovery.on("announced", onAnnounce);
    detach.push(() => discovery.off("lookup", onLookup), () => discovery.off("announced", onAnnounce));
  }

  let closed = false;
  return {
    registry,
    contentType: registry.contentType,
    text: async () => spellNaN(await registry.metrics()),
    watchHttp: (front, guard) => http.watch(front, guard),
    close() {
      if (closed) return;
      closed = true;
      for (const off of detach) off();
      if (db.verifier.observer) db.verifier.observer = undefined;
      registry.clear();
    },
  };

  function gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  }

  /** A counter that follows running totals kept by the node (increments by the difference at each scrape). */
  function counterFrom(name: string, help: string, label: string, read: () => ReadonlyMap<string, number>): void {
    const seen = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames: [label],
      registers,
      collect() {
        for (const [value, total] of read()) {
          const delta = total - (seen.get(value) ?? 0);
          if (delta > 0) this.inc({ [label]: value }, delta);
          seen.set(value, total);
        }
      },
    });
  }

  /** A counter without labels that follows one running total. */
  function counterOf(name: string, help: string, read: () => number): void {
    let seen = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const total = read();
        if (total > seen) this.inc(total - seen);
        seen = total;
      },
    });
  }
}

/**
 * prom-client 15 writes a NaN sample as "Nan" (its event-loop mean between
 * two scrapes a few ms apart); the text format spells it "NaN". Prometheus
 * reads either, stricter parsers only the latter.
 */
export function spellNaN(text: string): string {
  return text.includes(" Nan") ? text.replace(/ Nan$/gm, " NaN") : text;
}
