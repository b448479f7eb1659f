/**
 * What operators expect of `tooldb-dht serve`: limit flags, Prometheus
 * metrics and /healthz on an HTTP port, a warning when no DHT node answers,
 * a status line on SIGUSR1, and the `status` command that reads /healthz.
 */
import { get } from "node:http";
import { errorText } from "../base/errors.js";
import type { DHTServer } from "../platform/dht-server.js";
import { DhtWatch } from "../discovery/dht-watch.js";
import { HealthMonitor, statusLine, type HealthReport } from "../metrics/health.js";
import { startMetricsServer, type MetricsServer } from "../metrics/http.js";
import { createMetrics } from "../metrics/metrics.js";
import type { HttpGuard, HttpLimits } from "../limits/http-guard.js";
import { booleanFlag, portFlag, secondsFlag, stringFlag, type ParsedArgs } from "./args.js";
import type { Out } from "./command.js";
import { version } from "./version.js";
import { DEFAULT_DHT_WARN_AFTER_S, DEFAULT_METRICS_HOST, metricsPortFor } from "./defaults.js";
import type { StatusTarget } from "./options.js";

export interface Ops {
  /** Stops the start-up warnings (the DHT watch) at once: called when stopping begins, before the (maybe slow) stop of the server. */
  quiet(): void;
  stop(): Promise<void>;
}

/** The HTTP side of a server's ops. */
export interface OpsHttp {
  /** The metrics port's caps and timeouts: serveOptions' `httpLimits`, worked out from the flags once (the web front has the same). */
  limits: HttpLimits;
  /** The server's `--web`/TLS front's guard, counted in the metrics. */
  webGuard?: HttpGuard;
}

/** Starts metrics, health, the DHT watch and SIGUSR1 for a started server. */
export async function startOps(server: DHTServer, args: ParsedArgs, out: Out, { limits, webGuard }: OpsHttp): Promise<Ops> {
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
      http = await startMetricsServer({ host, port, metrics, health: () => health.report(), limits });
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
    quiet() {
      watch?.stop();
    },
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

/** Reads /healthz (where statusTarget says) and prints its status line; false when none or unhealthy. */
export async function status({ host, port }: StatusTarget, out: Out): Promise<boolean> {
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
