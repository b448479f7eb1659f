/**
 * The HTTP fronts of a server (`serve --web`/TLS port, metrics port), tried
 * as an attacker would: every route with the bundle missing, a malformed
 * request target (`GET //[`), a route failing after its headers went out,
 * a fuzz of malformed request lines, targets and headers (the server must
 * answer a good request after each), and 1,500 slowloris connections from
 * one IP, which the per-IP cap and the headers timeout must bound.
 */
import assert from "node:assert/strict";
import { createServer, get } from "node:http";
import { type Socket, connect } from "node:net";
import { after, before, describe, it } from "node:test";
import type { AddressInfo } from "node:net";
import { guardHttpServer, httpServerOptions, safeRoute, DEFAULT_HTTP_LIMITS } from "../src/limits/http-guard.js";
import { startMetricsServer, type MetricsServer } from "../src/metrics/http.js";
import type { HealthReport } from "../src/metrics/health.js";
import { startWebFront, type WebFront } from "../src/cli/web.js";
import { httpGet } from "./helpers/http.js";
import { waitUntil } from "./helpers/nodes.js";

const HOST = "127.0.0.1";

/** Sends raw bytes, resolves with what came back before the server closed or `ms` passed. */
function raw(port: number, bytes: string | Buffer, ms = 2000, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port, localAddress });
    let answer = "";
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);

const HEALTH: HealthReport = {
  status: "ok",
  version: "0",
  topic: "t",
  uptimeSeconds: 0,
  links: { servers: 0, clients: 0, unverified: 0 },
  storeKeys: 0,
  subscriptions: 0,
  refusals: 0,
  sync: { running: 0, keysListed: 0, keysFetched: 0 } as HealthReport["sync"],
};

describe("HTTP fronts never crash", { timeout: 120_000 }, () => {
  let web: WebFront;
  let metrics: MetricsServer;
  let healthThrows = false;

  before(async () => {
    // A bundle path that does not exist: what an install without dist/browser looked like.
    web = await startWebFront({ host: HOST, port: 0, topic: "t", web: true, bundle: "/nonexistent/tooldb-dht.js", limits: { headersTimeout: 1000, idleTimeout: 2000 } });
    metrics = await startMetricsServer({
      host: HOST,
      port: 0,
      health: () => {
        if (healthThrows) throw new Error("health report failed");
        return HEALTH;
      },
      limits: { headersTimeout: 1000, idleTimeout: 2000 },
    });
  });

  after(async () => {
    await web?.close();
    await metrics?.close();
  });

  it("every web route with the browser bundle missing: the page 200, the bundle 500, others 404/405; the server stays up", async () => {
    const base = `http://${HOST}:${web.port}`;
    assert.equal((await httpGet(`${base}/`)).status, 200);
    const bundle = await httpGet(`${base}/tooldb-dht.js`);
    assert.equal(bundle.status, 500);
    assert.equal((await httpGet(`${base}/nope`)).status, 404);
    assert.equal(statusOf(await raw(web.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")), 405);
    assert.equal((await httpGet(`${base}/`)).status, 200);
  });

  it("GET //[ (a target new URL() rejects) is a 400 on both ports, not a dead process", async () => {
    for (const port of [web.port, metrics.port]) {
      assert.equal(statusOf(await raw(port, "GET //[ HTTP/1.1\r\nHost: x\r\n\r\n")), 400);
      assert.equal(statusOf(await raw(port, "GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n")), 400);
    }
    assert.equal((await httpGet(`http://${HOST}:${metrics.port}/healthz`)).status, 200);
  });

  it("a route that throws answers 500; one that fails after its headers went out closes the socket; the server stays up", async () => {
    const server = createServer(
      httpServerOptions(DEFAULT_HTTP_LIMITS),
      safeRoute(async (req, res) => {
        if (req.url === "/throw") throw new Error("route failed");
        if (req.url === "/late") {
          res.writeHead(200, { "content-length": "100" });
          res.write("partial");
          await new Promise((r) => setTimeout(r, 10));
          throw new Error("failed after the headers");
        }
        res.writeHead(200).end("ok");
      }),
    );
    guardHttpServer(server, DEFAULT_HTTP_LIMITS);
    await new Promise<void>((r) => server.listen(0, HOST, r));
    const { port } = server.address() as AddressInfo;
    try {
      assert.equal((await httpGet(`http://${HOST}:${port}/throw`)).status, 500);
      const late = await raw(port, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.equal(statusOf(late), 200);
      assert.ok(late.endsWith("partial"), "the socket closed after the partial body");
      assert.equal((await httpGet(`http://${HOST}:${port}/`)).status, 200);
      healthThrows = true;
      assert.equal((await httpGet(`http://${HOST}:${metrics.port}/healthz`)).status, 500);
    } finally {
      healthThrows = false;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it("a fuzz of malformed request lines, targets and headers: each refused or answered, the server alive after each", async () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
    const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "G\x00T", "", "get", "X".repeat(300)];
    const targets = ["/", "//[", "/%zz", "http://[::1", "*", "", "/" + "a".repeat(20_000), "/\x7f\x01", "//x:99999", "/tooldb-dht.js?%", "../../etc/passwd", "/metrics#frag", "http://x:-1/"];
    const versions = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "http/1.1", "HTTP/1.1 extra"];
    const headers = [
      "Host: x",
      "Host: x\r\nHost: y",
      "Content-Length: -1",
      "Content-Length: 5\r\nContent-Length: 6",
      "Transfer-Encoding: chunked\r\nContent-Length: 3",
      "Transfer-Encoding: bogus",
      "NoColonHeader",
      "X: \x00\x01",
      `X-Big: ${"b".repeat(20_000)}`,
      "Upgrade: websocket\r\nConnection: Upgrade",
      ": empty-name",
      " leading-space: x",
    ];
    for (let i = 0; i < 120; i++) {
      const port = i % 2 === 0 ? web.port : metrics.port;
      const kind = i % 4;
      let request: Buffer;
      if (kind === 3) request = junk(1 + Math.floor(random() * 2000));
      else request = Buffer.from(`${pick(methods)} ${pick(targets)} ${pick(versions)}\r\n${pick(headers)}\r\n${random() < 0.8 ? "\r\n" : ""}`, "latin1");
      await raw(port, request, 1500);
      const alive = await httpGet(`http://${HOST}:${port}/healthz`);
      assert.ok(alive.status > 0, `server on ${port} stopped answering after fuzz case ${i}: ${JSON.stringify(request.toString("latin1").slice(0, 80))}`);
    }
  });

  it("1,500 slowloris connections from one IP: at most the per-IP cap held, a client from elsewhere served, the held ones dropped by the headers timeout", async () => {
    const attacker = "127.0.0.2";
    const sockets: Socket[] = [];
    let open = 0;
    // The most connections from the attacker the server held at once (sampled while they arrive).
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, web.guard.open(attacker))), 5);
    for (let batch = 0; batch < 15; batch++) {
      await Promise.all(
        Array.from(
          { length: 100 },
          () =>
            new Promise<void>((resolve) => {
              const s = connect({ host: HOST, port: web.port, localAddress: attacker });
              let connected = false;
              sockets.push(s);
              s.on("error", () => undefined);
              s.resume(); // read what the server says (a 408), so its close reaches us
              s.on("connect", () => {
                open++;
                connected = true;
                s.write("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
                resolve();
              });
              s.on("close", () => {
                if (connected) open--;
                resolve();
              });
            }),
        ),
      );
    }
    try {
      await waitUntil(() => web.guard.open(attacker) <= DEFAULT_HTTP_LIMITS.maxConnectionsPerIp && open <= DEFAULT_HTTP_LIMITS.maxConnectionsPerIp, 5000, "connections over the cap closed");
      clearInterval(sampler);
      assert.ok(peak <= DEFAULT_HTTP_LIMITS.maxConnectionsPerIp, `held ${peak} at once`);
      // The headers timeout frees slots while the 1,500 arrive (slowly on a loaded box): most are still refused at accept.
      assert.ok(web.guard.refused >= 1000, `refused ${web.guard.refused}`);
      const legit = await new Promise<number>((resolve, reject) =>
        get({ host: HOST, port: web.port, path: "/", localAddress: "127.0.0.3" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on("error", reject),
      );
      assert.equal(legit, 200);
      // The headers timeout (1 s here) frees what the cap let in.
      await waitUntil(() => web.guard.open(attacker) === 0, 5000, "slow connections dropped by the headers timeout");
    } finally {
      clearInterval(sampler);
      for (const s of sockets) s.destroy();
    }
  });
});
