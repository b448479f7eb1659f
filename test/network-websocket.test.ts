/**
 * WebSocketNetwork: the shared network compliance suite, plus what only a
 * WebSocket transport has: heartbeat, reconnect after a restart, frame size.
 * Real sockets on 127.0.0.1 only.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { ToolDb } from "../src/index.js";
import type { ToolDbOptions } from "../src/node/options.js";
import { signPeerRecord } from "../src/records/peer-record.js";
import { randomId } from "../src/base/random.js";
import { CloseCode } from "../src/network/connection.js";
import type { DialFailedEvent } from "../src/network/network-adapter.js";
import { WebSocketNetwork } from "../src/network/websocket-network.js";
import { type RangeOptions, ToolDbStorageAdapter } from "../src/stores/storage-adapter.js";
import { bothLinked, networkAdapterSuite, peerIdOf } from "./compliance/network-suite.js";
import { record, waitFor, waitForCount, withTimeout } from "./helpers/wait.js";
import { type RawIdentity, rawIdentity, signedPing } from "./helpers/raw-peer.js";
import { tcpProxy } from "./helpers/tcp-proxy.js";
import { ManualClock } from "./helpers/manual-clock.js";

const TOPIC = "ws-test";
const T = 5000;
/** Fast, deterministic timings: backoff without jitter (random() = 0 gives exactly `wait`, 2*wait, ...). */
const FAST: Partial<ToolDbOptions> = { topic: TOPIC, wait: 20, maxReconnectDelay: 200, random: () => 0, handshakeTimeout: 2000 };

function portOf(db: ToolDb): number {
  const port = (db.network as WebSocketNetwork).port;
  if (!port) throw new Error("node is not listening");
  return port;
}

async function wsServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const db = new ToolDb({ networkAdapter: WebSocketNetwork, server: true, host: "127.0.0.1", port: 0, ...FAST, ...opts });
  await db.ready;
  return db;
}

async function wsClient(server: ToolDb | undefined, opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const peers = server ? [{ host: "127.0.0.1", port: portOf(server) }] : [];
  const db = new ToolDb({ networkAdapter: WebSocketNetwork, ...FAST, ...opts, peers });
  await db.ready;
  return db;
}

networkAdapterSuite("WebSocketNetwork", {
  server: (opts) => wsServer(opts),
  client: (server, opts) => wsClient(server, opts),
  addressOf: (server) => ({ host: "127.0.0.1", port: portOf(server) }),
  alias: (server) => tcpProxy(portOf(server)),
});

// ---- raw `ws` peers ---------------------------------------------------------

/** Opens a raw ws link to `port` and completes the ToolDb handshake as a client. */
async function rawHandshake(port: number, topic = TOPIC): Promise<{ ws: WebSocket; id: RawIdentity }> {
  const id = await rawIdentity();
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  ws.on("error", () => undefined);
  await waitFor(ws, "open", T);
  const pong = waitFor(ws, "message", T, (data) => JSON.parse(String(data)).type === "pong");
  ws.send(JSON.stringify(await signedPing(id, topic)));
  await pong;
  return { ws, id };
}

/** The raw socket under a `ws` WebSocket (pausing it stops answering pings). */
function socketOf(ws: WebSocket): net.Socket {
  return (ws as unknown as { _socket: net.Socket })._socket;
}

/** An in-memory store whose data survives close(): a server "restart" keeps its identity and records. */
class SharedMemoryStore extends ToolDbStorageAdapter {
  static readonly disks = new Map<string, Map<string, string>>();
  private get disk(): Map<string, string> {
    let d = SharedMemoryStore.disks.get(this.storageName);
    if (!d) SharedMemoryStore.disks.set(this.storageName, (d = new Map()));
    return d;
  }
  get ready(): Promise<void> {
    return Promise.resolve();
  }
  protected async _put(key: string, value: string): Promise<void> {
    this.disk.set(key, value);
  }
  protected async _get(key: string): Promise<string | undefined> {
    return this.disk.get(key);
  }
  protected async _query(prefix: string, limit: number): Promise<string[]> {
    return [...this.disk.keys()].filter((k) => k.startsWith(prefix)).sort().slice(0, limit);
  }
  protected async _del(key: string): Promise<void> {
    this.disk.delete(key);
  }
  protected async *_range(o: RangeOptions): AsyncGenerator<[string, string]> {
    const inRange = (k: string) => (o.gte === undefined || k >= o.gte) && (o.gt === undefined || k > o.gt) && (o.lt === undefined || k < o.lt) && (o.lte === undefined || k <= o.lte);
    for (const k of [...this.disk.keys()].filter(inRange).sort()) yield [k, this.disk.get(k)!];
  }
  protected async _close(): Promise<void> {}
}

describe("WebSocketNetwork specifics", () => {
  const nodes: ToolDb[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  const track = <D extends ToolDb>(db: D): D => (nodes.push(db), db);

  afterEach(async () => {
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
    for (const c of cleanups.splice(0)) await c();
  });

  function closeRaw(ws: WebSocket): void {
    cleanups.push(() => ws.terminate());
  }

  describe("heartbeat", () => {
    it("a server drops a peer that completed the handshake and then stopped answering pings", { timeout: 20_000 }, async () => {
      const srv = track(await wsServer({ heartbeatInterval: 50 }));
      const { ws, id } = await rawHandshake(portOf(srv));
      closeRaw(ws);
      assert.ok(srv.network.session(id.clientId), "handshake completed");
      const dropped = waitFor(srv, "peer-disconnect", 2000, (info) => info.peerId === id.clientId);
      socketOf(ws).pause(); // stops reading: pings go unanswered
      const [info] = await dropped;
      assert.equal(info.code, CloseCode.HEARTBEAT_TIMEOUT);
      assert.match(info.reason, /heartbeat/);
      assert.equal(srv.network.peers.length, 0);
    });

    it("a live peer that answers pings is kept across many heartbeats", { timeout: 20_000 }, async () => {
      // Long enough that a loaded CI machine answers every ping in time.
      const srv = track(await wsServer({ heartbeatInterval: 150 }));
      const { ws, id } = await rawHandshake(portOf(srv));
      closeRaw(ws);
      const drops = record(srv, "peer-disconnect");
      // ws answers pings by itself; four pings span three full heartbeat periods.
      await waitForCount(ws, "ping", 4, 3000);
      assert.equal(drops.events.length, 0);
      assert.ok(srv.network.session(id.clientId), "still linked");
      drops.stop();
    });

    it("one heartbeat timer for every link (injected clock): a peer silent for an interval after a ping is dropped, live peers are kept", { timeout: 20_000 }, async () => {
      const clock = new ManualClock(Date.now());
      const srv = track(await wsServer({ clock, heartbeatInterval: 1000 }));
      const idleTimers = clock.pending;
      const links: Array<{ ws: WebSocket; id: RawIdentity }> = [];
      for (let i = 0; i < 4; i++) links.push(await rawHandshake(portOf(srv)));
      for (const { ws } of links) closeRaw(ws);
      // Frames of a turn leave at its end (turn-cork.ts), so the send budget saw the pongs queued and reads the links
      // again a sweep later (100 ms), finding them empty: its timer stops. Well before the first heartbeat visit.
      clock.advance(100);
      assert.equal(clock.pending, idleTimers + 1, "four links share one heartbeat timer");
      const [silent, ...live] = links as [(typeof links)[0], ...typeof links];
      socketOf(silent.ws).pause(); // reads nothing: the server's ping goes unanswered

      const pinged = live.map(({ ws }) => waitFor(ws, "ping", T));
      clock.advance(1000); // first visit: every link is pinged
      await Promise.all(pinged);
      // ws answers a ping before it reads on, so an answered request proves the server read the pong.
      await Promise.all(
        live.map(async ({ ws, id }) => {
          const answered = waitFor(ws, "message", T, (data) => JSON.parse(String(data)).type === "pong");
          ws.send(JSON.stringify(await signedPing(id, TOPIC)));
          await answered;
        }),
      );
      assert.equal(srv.network.peers.length, 4, "no one dropped at the first visit");

      const dropped = record(srv, "peer-disconnect");
      clock.advance(1000); // second visit: only the silent link gave no sign of life
      assert.deepEqual(
        dropped.events.map(([info]) => [info.peerId, info.code]),
        [[silent.id.clientId, CloseCode.HEARTBEAT_TIMEOUT]],
      );
      assert.equal(srv.network.peers.length, 3);

      // The timer stops with the last link.
      const gone = waitForCount(srv, "peer-disconnect", 3, T);
      for (const { ws } of live) ws.terminate();
      await gone;
      dropped.stop();
      assert.equal(clock.pending, idleTimers, "no heartbeat timer without links");
    });

    it("a client drops a server that stopped answering pings, and redials", { timeout: 20_000 }, async () => {
      const server = await rawIdentity();
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      await waitFor(wss, "listening", T);
      const port = (wss.address() as net.AddressInfo).port;
      cleanups.push(async () => {
        for (const c of wss.clients) c.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
      });
      let accepted = 0;
      wss.on("connection", (sock) => {
        accepted++;
        sock.on("error", () => undefined);
        sock.on("message", async (data) => {
          const m = JSON.parse(String(data)) as { type: string; id: string };
          if (m.type !== "ping") return;
          const peer = await signPeerRecord(server.user, TOPIC, "127.0.0.1", port, Date.now());
          sock.send(JSON.stringify({ type: "pong", id: m.id, to: [], clientId: server.clientId, isServer: true, servers: [], peer }));
          socketOf(sock).pause(); // goes silent right after the handshake
        });
      });
      const cli = track(await wsClient(undefined, { heartbeatInterval: 50 }));
      const linked = waitFor(cli, "peer-connect", T);
      const dropped = waitFor(cli, "peer-disconnect", 2000);
      cli.network.connectTo("127.0.0.1", port);
      assert.equal((await linked)[0].peerId, server.clientId);
      const [info] = await dropped;
      assert.equal(info.code, CloseCode.HEARTBEAT_TIMEOUT);
      // The dial target survives a heartbeat drop: the client dials again.
      await waitFor(cli, "peer-connect", T);
      assert.ok(accepted >= 2, "the client redialed");
    });
  });

  describe("reconnect", () => {
    it("after the server restarts on the same port, the client reconnects with doubling backoff", { timeout: 20_000 }, async () => {
      const storageName = `restart-${randomId()}`;
      cleanups.push(() => {
        SharedMemoryStore.disks.delete(storageName);
        SharedMemoryStore.disks.delete(`${storageName}.keys`);
      });
      const srv1 = track(await wsServer({ storageAdapter: SharedMemoryStore, storageName }));
      const port = portOf(srv1);
      const serverId = peerIdOf(srv1);
      await srv1.putData("survives-restart", "yes");
      // wait = 20 ms, random() = 0: delays 20, 40, 80, 160, ... (capped at 1000)
      const cli = track(await wsClient(srv1, { wait: 20, maxReconnectDelay: 1000, random: () => 0 }));
      await bothLinked(srv1, cli);

      const times: number[] = [];
      const failures = waitForCount(cli, "dial-failed", 3, T, () => (times.push(Date.now()), true));
      const gone = waitFor(cli, "peer-disconnect", T);
      await srv1.close();
      await gone;
      const failed = (await failures).map(([e]) => e as DialFailedEvent);
      for (const e of failed) {
        assert.equal(e.final, false);
        assert.equal(e.host, "127.0.0.1");
        assert.equal(e.port, port);
      }
      // Timers never fire early; allow 2 ms for rounding.
      assert.ok(times[1]! - times[0]! >= 40 - 2, `second retry waited ${times[1]! - times[0]!} ms, expected >= 40`);
      assert.ok(times[2]! - times[1]! >= 80 - 2, `third retry waited ${times[2]! - times[1]!} ms, expected >= 80`);
      const target = cli.network.dialTargets()[0]!;
      assert.ok(target.failures >= 3, `failures ${target.failures}`);

      const back = waitFor(cli, "peer-connect", T);
      const srv2 = track(await wsServer({ storageAdapter: SharedMemoryStore, storageName, port }));
      assert.equal(portOf(srv2), port);
      assert.equal(peerIdOf(srv2), serverId, "the restarted server kept its identity");
      const [info] = await back;
      assert.equal(info.peerId, serverId);
      const after = cli.network.dialTargets();
      assert.equal(after.length, 1);
      assert.equal(after[0]!.state, "connected");
      assert.equal(after[0]!.failures, 0, "failures reset on a successful handshake");
      assert.equal(await cli.getData("survives-restart", false, T), "yes");
    });

    it("maxRetries bounds the attempts and the last dial-failed is final", { timeout: 20_000 }, async () => {
      // A port that refuses: listen, note the port, close.
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
      const port = (probe.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const cli = track(await wsClient(undefined, { maxRetries: 2 }));
      const events = record<[DialFailedEvent]>(cli, "dial-failed");
      const final = waitFor(cli, "dial-failed", T, (e) => e.final);
      cli.network.connectTo("127.0.0.1", port);
      await final;
      assert.deepEqual(
        events.events.map(([e]) => e.final),
        [false, false, true],
      );
      // The socket's error is the reason (the close itself, 1006, carries none).
      for (const [e] of events.events) assert.match(e.reason, /ECONNREFUSED 127\.0\.0\.1:\d+/);
      assert.deepEqual(cli.network.dialTargets(), []);
      events.stop();
    });
  });

  describe("frame size", () => {
    it("a raw frame larger than maxMessageBytes closes the link (1009); the server keeps serving", { timeout: 20_000 }, async () => {
      const srv = track(await wsServer({ maxMessageBytes: 2048 }));
      const { ws, id } = await rawHandshake(portOf(srv));
      closeRaw(ws);
      const closed = waitFor(ws, "close", T);
      const dropped = waitFor(srv, "peer-disconnect", T, (i) => i.peerId === id.clientId);
      ws.send(JSON.stringify({ type: "get", id: randomId(), to: [], key: "x".repeat(4000) }));
      const [[code], [info]] = await Promise.all([closed, dropped]);
      assert.equal(code, CloseCode.TOO_LARGE);
      assert.equal(info.peerId, id.clientId);
      // Others are unaffected.
      const again = await rawHandshake(portOf(srv));
      closeRaw(again.ws);
      assert.ok(srv.network.session(again.id.clientId));
    });

    it("an oversized frame before the handshake closes the link", { timeout: 20_000 }, async () => {
      const srv = track(await wsServer({ maxMessageBytes: 2048 }));
      const ws = new WebSocket(`ws://127.0.0.1:${portOf(srv)}`);
      ws.on("error", () => undefined);
      closeRaw(ws);
      await waitFor(ws, "open", T);
      const closed = waitFor(ws, "close", T);
      ws.send("y".repeat(5000));
      const [code] = await closed;
      assert.equal(code, CloseCode.TOO_LARGE);
      assert.equal(srv.network.peers.length, 0);
    });

    it("a frame under the limit passes", { timeout: 20_000 }, async () => {
      const srv = track(await wsServer({ maxMessageBytes: 4096 }));
      const cli = track(await wsClient(srv));
      await bothLinked(srv, cli);
      const got = waitFor(srv, "data", T, (r) => r.k === "fits");
      await cli.putData("fits", "z".repeat(2500));
      await got;
      assert.equal(srv.network.peers.length, 1);
    });

    it("a client put larger than the server's limit drops that link, is not stored, and the client reconnects", { timeout: 20_000 }, async () => {
      const srv = track(await wsServer({ maxMessageBytes: 2048 }));
      const cli = track(await wsClient(srv));
      await bothLinked(srv, cli);
      const dropped = waitFor(cli, "peer-disconnect", T);
      const srvDropped = waitFor(srv, "peer-disconnect", T);
      await cli.putData("too-big", "b".repeat(8000));
      const [[info]] = await Promise.all([dropped, srvDropped]);
      assert.equal(info.peerId, peerIdOf(srv));
      assert.equal(await srv.records.get("too-big"), undefined);
      await bothLinked(srv, cli);
      const ok = waitFor(srv, "data", T, (r) => r.k === "small");
      await cli.putData("small", "fine");
      await ok;
    });

    it("a server push larger than the client's limit drops that link on the client side", { timeout: 20_000 }, async () => {
      const srv = track(await wsServer());
      const cli = track(await wsClient(srv, { maxMessageBytes: 2048 }));
      await bothLinked(srv, cli);
      const dropped = waitFor(srv, "peer-disconnect", T);
      const cliDropped = waitFor(cli, "peer-disconnect", T);
      await srv.putData("too-big-down", "d".repeat(8000));
      await Promise.all([dropped, cliDropped]);
      assert.equal(await cli.records.get("too-big-down"), undefined);
    });
  });

  it("a plain HTTP request (no WebSocket upgrade) is answered and does not disturb the server", { timeout: 20_000 }, async () => {
    const srv = track(await wsServer());
    const sock = net.connect(portOf(srv), "127.0.0.1");
    sock.on("error", () => undefined);
    cleanups.push(() => void sock.destroy());
    await waitFor(sock, "connect", T);
    const answered = waitFor(sock, "data", T);
    sock.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const [data] = await answered;
    assert.match(String(data), /^HTTP\/1\.1 426/);
    sock.destroy();
    const cli = track(await wsClient(srv));
    await bothLinked(srv, cli);
    assert.equal(srv.network.peers.length, 1);
  });
});
