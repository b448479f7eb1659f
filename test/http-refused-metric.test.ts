/**
 * Found by an outside check: the HTTP fronts' guard (limits/http-guard.ts)
 * counted the connections it closed, but no metric showed them. Now
 * `tooldb_http_refused_total{front,reason}` does, by the guard's stable
 * reasons (per_ip, total, pipelined), each series there from the start at
 * 0; `serve` counts its --web front as "web" and the metrics port as
 * "metrics".
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startWebFront, type WebFront } from "../src/cli/web.js";
import type { ToolDb } from "../src/index.js";
import { createMetrics, startMetricsServer, type MetricsServer, type ToolDbMetrics } from "../src/metrics/index.js";
import { run } from "./helpers/cli.js";
import { httpGet } from "./helpers/http.js";
import { closeAll, startServer, waitUntil } from "./helpers/nodes.js";

const HOST = "127.0.0.1";

/** A socket from `from` that sends `bytes` (or nothing) and never reads. */
function socketFrom(port: number, from: string, bytes?: string): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port, localAddress: from });
    socket.on("error", () => undefined);
    socket.once("connect", () => {
      if (bytes) socket.write(bytes);
      resolve(socket);
    });
  });
}

/** The tooldb_http_refused_total samples of a scrape, as "front reason" -> value. */
async function refusedSeries(port: number): Promise<Record<string, number>> {
  const text = (await httpGet(`http://${HOST}:${port}/metrics`)).body;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tooldb_http_refused_total\{front="([^"]+)",reason="([^"]+)"\} (\S+)$/gm)) out[`${m[1]} ${m[2]}`] = Number(m[3]);
  return out;
}

describe("tooldb_http_refused_total", { timeout: 60_000 }, () => {
  const sockets: Socket[] = [];
  const nodes: ToolDb[] = [];
  const closers: Array<{ close(): unknown }> = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    // Last registered first: a server is stopped before the directory it writes in is removed.
    for (const c of closers.reverse()) await c.close();
    await closeAll(...nodes);
  });

  it("counts each front's refusals by reason: over the per-IP cap, closed to make room, pipelined past the cap", async () => {
    const dir = mkdtempSync(join(tmpdir(), "http-refused-"));
    closers.push({ close: () => rmSync(dir, { recursive: true, force: true }) });
    writeFileSync(join(dir, "app.js"), Buffer.alloc(64 * 1024, 97));
    const db = await startServer({ topic: "http-refused" });
    nodes.push(db);
    const metrics: ToolDbMetrics = createMetrics(db, { defaultMetrics: false });
    closers.push({ close: () => metrics.close() });
    const web: WebFront = await startWebFront({ host: HOST, port: 0, topic: "http-refused", web: true, webDir: dir, limits: { maxConnectionsPerIp: 2, maxConnections: 4, headersTimeout: 30_000, idleTimeout: 30_000 } });
    closers.push(web);
    metrics.watchHttp("web", web.guard);
    // 127.0.0.1 (the scraper) is exempt from the per-IP cap, as by default.
    const server: MetricsServer = await startMetricsServer({ host: HOST, port: 0, metrics, limits: { maxConnectionsPerIp: 1, headersTimeout: 30_000, idleTimeout: 30_000 } });
    closers.push(server);

    const zero = { "web per_ip": 0, "web total": 0, "web pipelined": 0, "metrics per_ip": 0, "metrics total": 0, "metrics pipelined": 0 };
    assert.deepEqual(await refusedSeries(server.port), zero, "every series there at 0 before any refusal");

    // Over the per-IP cap (2): the third from one address.
    for (let i = 0; i < 3; i++) sockets.push(await socketFrom(web.port, "127.0.6.2"));
    await waitUntil(() => web.guard.refusedBy.per_ip === 1, 5000, "the per-IP refusal");
    // At the total cap (4): the oldest makes room for the fifth.
    for (let i = 0; i < 3; i++) sockets.push(await socketFrom(web.port, `127.0.6.${3 + i}`));
    await waitUntil(() => web.guard.refusedBy.total === 1, 5000, "the oldest closed to make room");
    for (const s of sockets.splice(0)) s.destroy();
    await waitUntil(() => web.guard.open() === 0, 5000, "the web front's sockets closed");
    // 20 requests in one write, nobody reading the answers: closed past maxPipelined (4).
    sockets.push(await socketFrom(web.port, "127.0.6.9", "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20)));
    await waitUntil(() => web.guard.refusedBy.pipelined === 1, 5000, "the pipelining connection closed");
    // The metrics port's per-IP cap (1): the second from one address.
    for (let i = 0; i < 2; i++) sockets.push(await socketFrom(server.port, "127.0.7.2"));
    await waitUntil(() => server.guard.refusedBy.per_ip === 1, 5000, "the metrics port's per-IP refusal");

    assert.deepEqual(await refusedSeries(server.port), { ...zero, "web per_ip": 1, "web total": 1, "web pipelined": 1, "metrics per_ip": 1 });
    assert.equal(web.guard.refused, 3, "the reasons add up to the guard's total");
  });

  it("serve --web counts its web front and its metrics port", async () => {
    const dir = mkdtempSync(join(tmpdir(), "http-refused-serve-"));
    closers.push({ close: () => rmSync(dir, { recursive: true, force: true }) });
    let metricsPort = 0;
    const serve = run(["serve", "--topic", "http-refused", "--host", HOST, "--port", "0", "--web", "--data", join(dir, "d"), "--bootstrap", "127.0.0.1:9", "--metrics-port", "0"], (line) => {
      const m = /^Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(line);
      if (m) metricsPort = Number(m[1]);
    }, 30_000);
    closers.push({ close: () => (serve.child.kill("SIGTERM"), serve.exited) });
    await waitUntil(() => metricsPort > 0, 20_000, "serve's metrics port");
    const series = await refusedSeries(metricsPort);
    assert.deepEqual(Object.keys(series).sort(), ["metrics per_ip", "metrics pipelined", "metrics total", "web per_ip", "web pipelined", "web total"]);
  });
});
