import { createServer, type Server } from "node:http";
import { errorText } from "../base/errors.js";
import { createLogger } from "../base/logger.js";
import { DEFAULT_HTTP_LIMITS, type HttpGuard, type HttpLimits, guardHttpServer, httpServerOptions, requestPath, safeRoute } from "../limits/http-guard.js";
import type { HealthReport } from "./health.js";
import type { ToolDbMetrics } from "./metrics.js";

const log = createLogger("metrics:http");

export interface MetricsServerOptions {
  host: string;
  /** 0 = any free port (see `port` on the result). */
  port: number;
  /** Serves GET /metrics when given. */
  metrics?: ToolDbMetrics;
  /** Serves GET /healthz when given: 200 with the report when its status is "ok", else 503. */
  health?: () => HealthReport;
  /** Connection caps and timeouts (default DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>;
}

export interface MetricsServer {
  readonly port: number;
  readonly guard: HttpGuard;
  close(): Promise<void>;
}

/**
 * A small HTTP server for Prometheus (`/metrics`) and orchestrators
 * (`/healthz`), under the same caps and timeouts as the web front; a failing
 * route answers 500, a malformed request target 400.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const route = safeRoute(
    async (req, res) => {
      const path = requestPath(req);
      if (path === undefined) {
        res.writeHead(400, { "content-type": "text/plain", connection: "close" }).end("bad request target\n");
      } else if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
      } else if (path === "/metrics" && opts.metrics) {
        const text = await opts.metrics.text();
        res.writeHead(200, { "content-type": opts.metrics.contentType }).end(text);
      } else if (path === "/healthz" && opts.health) {
        const report = opts.health();
        res.writeHead(report.status === "ok" ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report) + "\n");
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
      }
    },
    (err, req) => log("%s failed: %s", JSON.stringify(req.url?.slice(0, 200)), errorText(err)),
  );
  const server: Server = createServer(httpServerOptions(limits), route);
  const guard = guardHttpServer(server, limits, { onRefused: (_ip, reason) => log("refused: %s", reason) });
  opts.metrics?.watchHttp("metrics", guard);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log("server error: %s", errorText(err)));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  let closing: Promise<void> | undefined;
  return {
    port,
    guard,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
