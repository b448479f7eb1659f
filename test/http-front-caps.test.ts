/**
 * The web front's connection caps (serve --web / --tls-cert: WebSocket links
 * upgrade on it), tried from outside on loopback. An outside check found:
 *
 * - its cap of 512 HTTP connections in all was Node's `server.maxConnections`,
 *   which counts every socket of the server, upgraded WebSocket links too: a
 *   `serve --web` server held 512 links and dropped the 513th peer at accept
 *   (no refusal, no metric), where `maxConnections` (1,024) and the eviction
 *   of idle links should have decided;
 * - at that cap the newcomer was the one dropped, so silent sockets from a
 *   few addresses (32 each) locked every browser and server out for as long
 *   as they were renewed; the link port's own socket budget closes the
 *   oldest socket that is not a link yet instead, and now so does the front;
 * - a TLS front held a socket that never finished its TLS handshake for
 *   Node's default 120 s, whatever the headers and idle timeouts said;
 * - on a TLS front an upgraded link never left the HTTP count (the socket
 *   that upgrades is the TLS socket, not the one accepted): the fifth wss://
 *   link from one address was refused at a per-IP cap of 4;
 * - a connection could pipeline any number of requests without reading the
 *   answers, and the async routes (a --web-dir file, the bundle, /metrics)
 *   ran for every one at once: 8 connections of 5,000 pipelined GETs of a
 *   270 KB --web-dir file grew the process by 11 GB, 8 of 20,000 GETs of
 *   /metrics by 900 MB. Past `maxPipelined` unanswered requests the
 *   connection is closed now, and its queued requests do nothing.
 */
import assert from "node:assert/strict";
import { get } from "node:http";
import { type Socket, connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { generate } from "selfsigned";
import { WebSocket } from "ws";
import type { ToolDb } from "../src/index.js";
import { startWebFront, type WebFront } from "../src/cli/web.js";
import { DEFAULT_HTTP_LIMITS } from "../src/limits/http-guard.js";
import { createMetrics } from "../src/metrics/metrics.js";
import { startMetricsServer } from "../src/metrics/http.js";
import { closeAll, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";

const HOST = "127.0.0.1";
const TOPIC = "front-caps";

function httpStatus(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get({ host: HOST, port, path: "/", localAddress, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 5 s")));
    req.on("error", reject);
  });
}

/** A socket that connects and then says nothing; `closed` resolves with when the server closed it. */
function silentSocket(port: number, localAddress: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port, localAddress });
    socket.on("error", () => undefined);
    socket.resume();
    const closed = new Promise<number>((done) => socket.once("close", () => done(Date.now())));
    socket.once("connect", () => resolve({ socket, closed }));
    socket.once("close", () => reject(new Error(`closed before connecting from ${localAddress}`)));
  });
}

describe("the web front's connection caps", { timeout: 120_000 }, () => {
  const fronts: WebFront[] = [];
  const nodes: ToolDb[] = [];
  const sockets: Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    terminateRawLinks();
    await closeAll(...nodes);
    await Promise.all(fronts.map((f) => f.close()));
  });

  /** A web front (HTTP caps `limits`) with a server whose WebSocket links upgrade on it. */
  async function serverOnFront(limits: Parameters<typeof startWebFront>[0]["limits"]): Promise<{ front: WebFront; db: ToolDb }> {
    const front = await startWebFront({ host: HOST, port: 0, topic: TOPIC, web: true, bundle: "/nonexistent/tooldb-dht.js", limits });
    fronts.push(front);
    const db = await startServer({ topic: TOPIC, port: front.port, httpServer: front.server, handshakeTimeout: 20_000 });
    nodes.push(db);
    return { front, db };
  }

  it("links that upgraded are not HTTP connections: 40 WebSocket links on a front capped at 16 HTTP connections, and the page still answers", async () => {
    const { front, db } = await serverOnFront({ maxConnections: 16 });
    const links: RawLink[] = [];
    for (let i = 0; i < 40; i += 10) {
      // Ten a batch from one address each (the per-IP caps are 32).
      const batch = await Promise.allSettled(Array.from({ length: 10 }, () => RawLink.connect(front.port, { topic: TOPIC, from: `127.0.3.${2 + i / 10}` })));
      for (const r of batch) if (r.status === "fulfilled") links.push(r.value);
    }
    assert.equal(links.length, 40, `${links.length} of 40 links got through the handshake`);
    await waitUntil(() => db.network.peers.length === 40, 10_000, "40 sessions on the server");
    assert.equal(front.guard.open(), 0, "no HTTP connection counted once every socket upgraded");
    assert.equal(await httpStatus(front.port, "127.0.3.20"), 200);
  });

  it("at the cap, the oldest connection that has not upgraded makes room: silent sockets from four addresses lock no newcomer out", async () => {
    const { front, db } = await serverOnFront({ maxConnections: 16, maxConnectionsPerIp: 4, headersTimeout: 30_000, idleTimeout: 30_000 });
    const silent: Array<{ socket: Socket; closed: Promise<number> }> = [];
    for (let i = 0; i < 16; i++) {
      const s = await silentSocket(front.port, `127.0.4.${2 + (i % 4)}`);
      sockets.push(s.socket);
      silent.push(s);
    }
    await waitUntil(() => front.guard.open() === 16, 5000, "16 silent connections held");
    // A browser loads the page, and a peer links, from elsewhere.
    assert.equal(await httpStatus(front.port, "127.0.4.20"), 200);
    const link = await RawLink.connect(front.port, { topic: TOPIC, from: "127.0.4.21" });
    await waitUntil(() => db.network.peers.length === 1, 5000, "the newcomer's session");
    assert.ok(!link.isClosed, "the newcomer's link stays open");
    // The oldest silent sockets made room, the newest are still held; never more than the cap.
    const closedFirst = await Promise.race([silent[0]!.closed, new Promise<number>((r) => setTimeout(() => r(0), 5000))]);
    assert.ok(closedFirst > 0, "the oldest silent socket was closed to make room");
    assert.ok(!silent[15]!.socket.destroyed, "the newest silent socket is still held");
    assert.ok(front.guard.open() <= 16, `${front.guard.open()} HTTP connections held`);
    assert.ok(front.guard.refused >= 1, `${front.guard.refused} closed to make room`);
  });

  async function certificate() {
    const pems = await generate([{ name: "commonName", value: HOST }], { keyType: "ec", curve: "P-256", algorithm: "sha256", notAfterDate: new Date(Date.now() + 86_400_000) });
    return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) };
  }

  it("TLS: wss:// links that upgraded leave the HTTP count: 12 from one address on a front capped at 4 per IP and 8 in all", async () => {
    const front = await startWebFront({ host: HOST, port: 0, topic: TOPIC, web: true, tls: await certificate(), limits: { maxConnections: 8, maxConnectionsPerIp: 4 } });
    fronts.push(front);
    nodes.push(await startServer({ topic: TOPIC, port: front.port, httpServer: front.server, handshakeTimeout: 20_000 }));
    const links: WebSocket[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const ws = new WebSocket(`wss://${HOST}:${front.port}`, { rejectUnauthorized: false, localAddress: "127.0.6.2" });
        links.push(ws);
        ws.on("error", () => undefined);
        const opened = await new Promise<boolean>((resolve) => {
          ws.once("open", () => resolve(true));
          ws.once("close", () => resolve(false));
        });
        assert.ok(opened, `wss link ${i + 1} refused`);
      }
      await waitUntil(() => front.guard.open() === 0, 5000, "no HTTP connection counted");
      assert.ok(links.every((ws) => ws.readyState === WebSocket.OPEN), "every link still open");
    } finally {
      for (const ws of links) ws.terminate();
    }
  });

  it("TLS: a socket that never finishes its TLS handshake is closed within the headers timeout, not Node's 120 s", async () => {
    const front = await startWebFront({ host: HOST, port: 0, topic: TOPIC, web: true, tls: await certificate(), limits: { headersTimeout: 1000, idleTimeout: 2000 } });
    fronts.push(front);
    const started = Date.now();
    const quiet = await silentSocket(front.port, "127.0.5.2");
    const partial = await silentSocket(front.port, "127.0.5.3");
    sockets.push(quiet.socket, partial.socket);
    partial.socket.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a ClientHello, and no more
    const deadline = new Promise<number>((r) => setTimeout(() => r(0), 8000));
    for (const [what, s] of [["silent", quiet], ["half a ClientHello", partial]] as const) {
      const at = await Promise.race([s.closed, deadline]);
      assert.ok(at > 0, `a ${what} socket still held after 8 s`);
      assert.ok(at - started < 6000, `a ${what} socket closed after ${at - started} ms`);
    }
  });

  /** Pipelines `count` GETs of `path` on each of `connections` connections and never reads: resolves once the server closed them all, or after `ms`. */
  async function pipeline(port: number, path: string, connections: number, count: number, ms: number): Promise<{ closed: number; rssGrowth: number }> {
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const ends = Array.from({ length: connections }, (_, k) =>
      silentSocket(port, `127.0.7.${2 + k}`).then(({ socket, closed }) => {
        sockets.push(socket);
        socket.pause(); // read nothing
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(count));
        return Promise.race([closed.then(() => 1), new Promise<number>((r) => setTimeout(() => r(0), ms))]);
      }),
    );
    const closed = (await Promise.all(ends)).reduce((a, b) => a + b, 0);
    clearInterval(sampler);
    return { closed, rssGrowth: peak - rss0 };
  }

  it("pipelined requests nobody reads: the connection is closed past maxPipelined, the routes do not run for the rest (a --web-dir file, /metrics)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "front-caps-"));
    try {
      writeFileSync(join(dir, "app.js"), Buffer.alloc(256 * 1024, 97));
      const front = await startWebFront({ host: HOST, port: 0, topic: TOPIC, web: true, webDir: dir, bundle: "/nonexistent/tooldb-dht.js" });
      fronts.push(front);
      // Before: every GET read the file at once, 4 x 500 x 256 KB = 512 MB.
      const web = await pipeline(front.port, "/app.js", 4, 500, 5000);
      assert.equal(web.closed, 4, "the server closed every pipelining connection");
      assert.ok(web.rssGrowth < 96 * 1024 * 1024, `the process grew by ${Math.round(web.rssGrowth / 1e6)} MB`);
      assert.ok(front.guard.refused >= 4, `${front.guard.refused} refused`);
      // One request at a time on a kept-alive connection (what browsers and Prometheus do) is served.
      for (let i = 0; i < 2 * DEFAULT_HTTP_LIMITS.maxPipelined + 2; i++) assert.equal(await fetch(`http://${HOST}:${front.port}/app.js`).then(async (r) => (await r.arrayBuffer(), r.status)), 200);

      const db = await startServer({ topic: TOPIC });
      nodes.push(db);
      const metrics = createMetrics(db);
      const server = await startMetricsServer({ host: HOST, port: 0, metrics });
      try {
        const scrapes = await pipeline(server.port, "/metrics", 4, 2000, 5000);
        assert.equal(scrapes.closed, 4, "the metrics port closed every pipelining connection");
        assert.ok(scrapes.rssGrowth < 96 * 1024 * 1024, `the process grew by ${Math.round(scrapes.rssGrowth / 1e6)} MB`);
        assert.equal((await fetch(`http://${HOST}:${server.port}/metrics`)).status, 200);
      } finally {
        metrics.close();
        await server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
