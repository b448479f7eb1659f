/**
 * What operators expect of `tooldb-dht serve`: limit flags, Prometheus
 * metrics and /healthz on an HTTP port, a warning when no DHT node answers,
 * a status line on SIGUSR1, and the `status` command that reads /healthz.
 */
import { readFileSync } from "node:fs";
import { get } from "node:http";
import { errorText } from "../base/errors.js";
import type { Limits } from "../limits/limits.js";
import type { DHTServer } from "../platform/dht-server.js";
import { DhtWatch } from "../discovery/dht-watch.js";
import { HealthMonitor, statusLine, type HealthReport } from "../metrics/health.js";
import { startMetricsServer, type MetricsServer } from "../metrics/http.js";
import { createMetrics } from "../metrics/metrics.js";
import { listFlag, portFlag, stringFlag, type ParsedArgs } from "./args.js";

export const DEFAULT_METRICS_HOST = "127.0.0.1";
export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_DHT_WARN_AFTER_S = 10;

export const OPS_USAGE = `        Limits (defaults in docs/operating.md): --max-connections N,
        --max-unverified N, --max-per-ip N, --message-rate N (per peer, /s),
        --message-burst N, --max-outstanding N (per peer), --max-send-backlog BYTES, --max-store-keys N,
        --anonymous-key-share F, --max-keys-per-author N, --max-subscriptions N,
        --ban-duration SECONDS (0 = no bans), --exempt-ips ip,...
        Metrics: /metrics and /healthz on --metrics-host H (default ${DEFAULT_METRICS_HOST})
        --metrics-port P (default ${DEFAULT_METRICS_PORT}, 0 = any); --no-metrics turns them off.
        --dht-warn-after SECONDS (default ${DEFAULT_DHT_WARN_AFTER_S}): warn when no DHT node answered.
        kill -USR1 <pid> prints a one-line status.
  status [--metrics-host H] [--metrics-port P]
        Print the status line of the server whose /healthz is there (exit 1 if none or unhealthy).
  --version
        Print the version.`;

/** The package version (package.json beside dist/). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

const LIMIT_FLAGS: Array<[flag: string, limit: keyof Limits, scale?: number]> = [
  ["max-connections", "maxConnections"],
  ["max-unverified", "maxUnverifiedConnections"],
  ["max-per-ip", "maxConnectionsPerIp"],
  ["message-rate", "messageRate"],
  ["message-burst", "messageBurst"],
  ["max-outstanding", "maxOutstandingPerPeer"],
  ["max-send-backlog", "maxSendBacklog"],
  ["max-store-keys", "maxStoreKeys"],
  ["anonymous-key-share", "anonymousKeyShare"],
  ["max-keys-per-author", "maxKeysPerAuthor"],
  ["max-subscriptions", "maxSubscriptions"],
  ["ban-duration", "banDuration", 1000],
];

/** The limits given as flags (validated by the node: resolveLimits). */
export function limitsFromFlags(args: ParsedArgs): Partial<Limits> {
  const limits: Record<string, unknown> = {};
  for (const [flag, limit, scale = 1] of LIMIT_FLAGS) {
    const raw = stringFlag(args, flag);
    if (raw === undefined) continue;
    const n = raw === "Infinity" ? Infinity : Number(raw);
    if (raw.trim() === "" || Number.isNaN(n)) throw new Error(`--${flag} must be a number (got ${raw})`);
    limits[limit] = n * scale;
  }
  const exempt = listFlag(args, "exempt-ips");
  if (exempt) limits.exemptIps = exempt;
  return limits as Partial<Limits>;
}

export interface Ops {
  stop(): Promise<void>;
}

/** Starts metrics, health, the DHT watch and SIGUSR1 for a started server. */
export async function startOps(server: DHTServer, args: ParsedArgs, out: (line: string) => void): Promise<Ops> {
  const v = version();
  const discovery = server.discovery;
  const health = new HealthMonitor(server.db, { version: v, discovery });
  const metrics = args.flags.get("no-metrics") === true ? undefined : createMetrics(server.db, { discovery });
  let http: MetricsServer | undefined;
  if (metrics) {
    const host = stringFlag(args, "metrics-host", undefined, DEFAULT_METRICS_HOST)!;
    const port = portFlag(args, "metrics-port", undefined, DEFAULT_METRICS_PORT);
    try {
      http = await startMetricsServer({ host, port, metrics, health: () => health.report() });
      out(`Metrics on http://${host}:${http.port}/metrics, health on http://${host}:${http.port}/healthz`);
    } catch (err) {
      out(`warning: metrics not served on ${host}:${port}: ${errorText(err)} (use --metrics-port, or --no-metrics)`);
    }
  }
  const warnAfter = Number(stringFlag(args, "dht-warn-after", undefined, String(DEFAULT_DHT_WARN_AFTER_S)));
  if (!(warnAfter > 0)) throw new Error("--dht-warn-after must be a number of seconds > 0");
  const watch = discovery
    ? new DhtWatch(
        discovery,
        { silentAfterMs: warnAfter * 1000 },
        {
          silent: (ms) =>
            out(
              `warning: no DHT node has answered in ${Math.round(ms / 1000)} s: this machine may be offline, UDP may be blocked, or the bootstrap nodes are down. Clients cannot find this server on the DHT until one answers.`,
            ),
          answered: (nodes) => out(`DHT reachable again: ${nodes} node(s) answered`),
        },
      )
    : undefined;
  const onStatus = () => out(statusLine(health.report()));
  process.on("SIGUSR1", onStatus);
  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        process.off("SIGUSR1", onStatus);
        watch?.stop();
        health.close();
        metrics?.close();
        await http?.close();
      })();
      return stopping;
    },
  };
}

/** `tooldb-dht status`: reads /healthz and prints its status line; false when none or unhealthy. */
export async function statusCommand(args: ParsedArgs, out: (line: string) => void): Promise<boolean> {
  const host = stringFlag(args, "metrics-host", undefined, DEFAULT_METRICS_HOST)!;
  const port = portFlag(args, "metrics-port", undefined, DEFAULT_METRICS_PORT);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/healthz`;
  try {
    const { status, body } = await httpGet(url, 3000);
    const report = JSON.parse(body) as HealthReport;
    out(statusLine(report));
    return status === 200;
  } catch (err) {
    out(`no tooldb-dht server answered on ${url}: ${errorText(err)}`);
    return false;
  }
}

function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk.length + body.length > 1 << 20 ? "" : chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}
