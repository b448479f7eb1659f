import { createServer, type Server } from "node:http";
import { errorText } from "../base/errors.js";
import type { HealthReport } from "./health.js";
import type { ToolDbMetrics } from "./metrics.js";

export interface MetricsServerOptions {
  host: string;
  /** 0 = any free port (see `port` on the result). */
  port: number;
  /** Serves GET /metrics when given. */
  metrics?: ToolDbMetrics;
  /** Serves GET /healthz when given: 200 with the report when its status is "ok", else 503. */
  health?: () => HealthReport;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A small HTTP server for Prometheus (`/metrics`) and orchestrators (`/healthz`). */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
    } else if (path === "/metrics" && opts.metrics) {
      const metrics = opts.metrics;
      metrics.text().then(
        (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(text),
        (err) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${errorText(err)}\n`),
      );
    } else if (path === "/healthz" && opts.health) {
      const report = opts.health();
      res.writeHead(report.status === "ok" ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report) + "\n");
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
