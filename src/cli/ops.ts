/**
 * What operators expect of `tooldb-dht serve`: limit flags, Prometheus
 * metrics and /healthz on an HTTP port, a warning when no DHT node answers,
 * a status line on SIGUSR1, and the `status` command that reads /healthz.
 */
import { get } from "node:http";
import { errorText } from "../base/errors.js";
import type { Limits } from "../limits/limits.js";
import type { DHTServer } from "../platform/dht-server.js";
import { DhtWatch } from "../discovery/dht-watch.js";
import { HealthMonitor, statusLine, type HealthReport } from "../metrics/health.js";
import { startMetricsServer, type MetricsServer } from "../metrics/http.js";
import { createMetrics } from "../metrics/metrics.js";
import { DEFAULT_HTTP_LIMITS, type HttpGuard, type HttpLimits } from "../limits/http-guard.js";
import { UsageError, booleanFlag, limitNumber, listFlag, portFlag, secondsFlag, stringFlag, type ParsedArgs } from "./args.js";
import type { Out } from "./command.js";
import { version } from "./version.js";
import { DEFAULT_DHT_WARN_AFTER_S, DEFAULT_METRICS_HOST, type LIMIT_FLAG_NAMES, metricsPortFor } from "./defaults.js";

const LIMIT_FLAGS: Array<[flag: (typeof LIMIT_FLAG_NAMES)[number], limit: keyof Limits, scale?: number]> = [
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

/** The limits given as flags (each checked while parsing: commands.ts LIMIT_FLAG_SPECS). */
export function limitsFromFlags(args: ParsedArgs): Partial<Limits> {
  const limits: Record<string, unknown> = {};
  for (const [flag, limit, scale = 1] of LIMIT_FLAGS) {
    const raw = stringFlag(args, flag);
    if (raw !== undefined) limits[limit] = limitNumber(raw) * scale;
  }
  const exempt = listFlag(args, "exempt-ips");
  if (exempt) limits.exemptIps = exempt;
  return limits as Partial<Limits>;
}

/** --no-metrics is the alternative to --metrics-port and --metrics-host: both at once is a usage error. */
export function checkMetricsFlags(args: ParsedArgs): void {
  if (!booleanFlag(args, "no-metrics")) return;
  const given = ["metrics-port", "metrics-host"].find((flag) => args.flags.has(flag));
  if (given) throw new UsageError(`--no-metrics and --${given} are alternatives: give one of them`);
}

/** The HTTP fronts' caps and timeouts: --max-per-ip and --exempt-ips as for links, and the two timeouts. */
export function httpLimitsFromFlags(args: ParsedArgs): HttpLimits {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS };
  const perIp = stringFlag(args, "max-per-ip");
  if (perIp !== undefined) limits.maxConnectionsPerIp = limitNumber(perIp);
  limits.exemptIps = listFlag(args, "exempt-ips") ?? limits.exemptIps;
  limits.headersTimeout = secondsFlag(args, "http-headers-timeout", DEFAULT_HTTP_LIMITS.headersTimeout / 1000) * 1000;
  limits.idleTimeout = secondsFlag(args, "http-idle-timeout", DEFAULT_HTTP_LIMITS.idleTimeout / 1000) * 1000;
  limits.requestTimeout = Math.max(limits.requestTimeout, limits.headersTimeout);
  return limits;
}

export interface Ops {
  stop(): Promise<void>;
}

/** Starts metrics, health, the DHT watch and SIGUSR1 for a started server (`webGuard`: its `--web`/TLS front's, counted in the metrics). */
export async function startOps(server: DHTServer, args: ParsedArgs, out: Out, webGuard?: HttpGuard): Promise<Ops> {
  const v = version();
  const discovery = server.discovery;
  const health = new HealthMonitor(server.db, { version: v, discovery });
  const metrics = booleanFlag(args, "no-metrics") ? undefined : createMetrics(server.db, { discovery });
  const warnAfter = secondsFlag(args, "dht-warn-after", DEFAULT_DHT_WARN_AFTER_S);
  let http: MetricsServer | undefined;
  if (webGuard) metrics?.watchHttp("web", webGuard);
  if (metrics) {
    const host = stringFlag(args, "metrics-host", undefined, DEFAULT_METRICS_HOST)!;
    const port = portFlag(args, "metrics-port", undefined, metricsPortFor(server.port));
    try {
      http = await startMetricsServer({ host, port, metrics, health: () => health.report(), limits: httpLimitsFromFlags(args) });
      out(`Metrics on http://${host}:${http.port}/metrics, health on http://${host}:${http.port}/healthz`);
    } catch (err) {
      out(`warning: metrics not served on ${host}:${port}: ${errorText(err)} (use --metrics-port, or --no-metrics)`);
    }
  }
  const watch = discovery
    ? new DhtWatch(
        discovery,
        { silentAfterMs: warnAfter * 1000 },
        {
          silent: (ms) =>
            out(
              `warning: no DHT node has answered in ${Math.floor(ms / 1000)} s: this machine may be offline, UDP may be blocked, or the bootstrap nodes are down. Clients cannot find this server on the DHT until one answers.`,
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

/** Reads /healthz and prints its status line; false when none or unhealthy. */
export async function status(args: ParsedArgs, out: Out): Promise<boolean> {
  const host = stringFlag(args, "metrics-host", undefined, DEFAULT_METRICS_HOST)!;
  const port = portFlag(args, "metrics-port", undefined, metricsPortFor(portFlag(args, "port", "PORT", 9000)));
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/healthz`;
  let answer: { status: number; body: string };
  try {
    answer = await httpGet(url, 3000);
  } catch (err) {
    throw new Error(`no tooldb-dht server answered on ${url}: ${errorText(err)}`);
  }
  const report = JSON.parse(answer.body) as HealthReport;
  out(statusLine(report));
  return answer.status === 200;
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
