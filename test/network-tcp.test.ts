/**
 * The stream bridge: StreamConnection framing on real `net` sockets, and
 * TcpNetwork (the bridge as a transport) against the same network compliance
 * suite as WebSocketNetwork. Then bad input on the stream carrier: garbage,
 * oversized frames, split frames, a peer that never handshakes. 127.0.0.1 only.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { ToolDb } from "../src/index.js";
import type { ToolDbOptions } from "../src/node/options.js";
import { ErrorCode } from "../src/base/errors.js";
import { CloseCode } from "../src/network/connection.js";
import { StreamConnection } from "../src/network/stream-connection.js";
import { encodeFrame, encodeMessage, FrameKind } from "../src/network/stream-framing.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { networkAdapterSuite } from "./compliance/network-suite.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { RawTcpLink, rawIdentity, signedPing, closedAfterEachTest } from "./helpers/raw-peer.js";
import { tcpProxy } from "./helpers/tcp-proxy.js";
import { silentPeerDropped } from "./helpers/heartbeat.js";
import { waitFor, waitForCount, withTimeout } from "./helpers/wait.js";
import { waitUntil } from "./helpers/nodes.js";

const TOPIC = "tcp-test";
const T = 5000;
const FAST: Partial<ToolDbOptions> = { topic: TOPIC, wait: 20, maxReconnectDelay: 200, random: () => 0, handshakeTimeout: 2000 };

function portOf(db: ToolDb): number {
  const port = (db.network as TcpNetwork).port;
  if (!port) throw new Error("node is not listening");
  return port;
}

async function tcpServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const db = new ToolDb({ networkAdapter: TcpNetwork, server: true, host: "127.0.0.1", port: 0, ...FAST, ...opts });
  await db.ready;
  return db;
}

async function tcpClient(server: ToolDb | undefined, opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  const peers = server ? [{ host: "127.0.0.1", port: portOf(server) }] : [];
  const db = new ToolDb({ networkAdapter: TcpNetwork, ...FAST, ...opts, peers });
  await db.ready;
  return db;
}

networkAdapterSuite("TcpNetwork (stream bridge)", {
  server: (opts) => tcpServer(opts),
  client: (server, opts) => tcpClient(server, opts),
  addressOf: (server) => ({ host: "127.0.0.1", port: portOf(server) }),
  alias: (server) => tcpProxy(portOf(server)),
});

/** A connected pair of real TCP sockets on 127.0.0.1. */
async function socketPair(): Promise<{ a: net.Socket; b: net.Socket; close(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  const a = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const b = await accepted;
  await new Promise<void>((resolve) => (a.readyState === "open" ? resolve() : a.once("connect", () => resolve())));
  return {
    a,
    b,
    close: async () => {
      a.destroy();
      b.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Opens a raw TCP socket to a node. */
async function rawSocket(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  await waitFor(socket, "connect", T);
  return socket;
}

/** Reads stream frames from a raw socket until a close frame; resolves its code and reason. */
function closeFrameOf(socket: net.Socket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error("no close frame")), T);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        if (buf[4] === FrameKind.CLOSE) {
          clearTimeout(timer);
          resolve({ code: buf.readUInt16BE(5), reason: buf.subarray(7, 4 + len).toString("utf8") });
          return;
        }
        buf = buf.subarray(4 + len);
      }
    });
  });
}

describe("StreamConnection", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function pair(opts: { heartbeatInterval?: number; maxMessageBytes?: number; clock?: ManualClock } = {}) {
    const sockets = await socketPair();
    cleanups.push(() => sockets.close());
    const o = { heartbeatInterval: opts.heartbeatInterval ?? 0, maxMessageBytes: opts.maxMessageBytes ?? 1024, clock: opts.clock };
    const a = new StreamConnection(sockets.a, { outgoing: true }, o);
    const b = new StreamConnection(sockets.b, { outgoing: false }, o);
    cleanups.push(() => (a.close(), b.close()));
    return { a, b, sockets };
  }

  it("carries frames both ways, whatever the chunking", { timeout: 20_000 }, async () => {
    const { a, b, sockets } = await pair();
    const got = waitFor(b, "message", T, (m: string) => m === "third");
    const seen: string[] = [];
    b.on("message", (m) => seen.push(m));
    a.send("first");
    // A frame cut into single bytes, then two frames in one chunk.
    const split = encodeMessage("ünïcode second");
    for (const byte of split) sockets.a.write(Buffer.of(byte));
    sockets.a.write(Buffer.concat([encodeMessage(""), encodeMessage("third")]));
    await got;
    assert.deepEqual(seen, ["first", "ünïcode second", "", "third"]);
    const back = waitFor(a, "message", T);
    b.send("reply");
    assert.deepEqual(await back, ["reply"]);
  });

  it("a connection's handler hears message, refused and close before its listeners, and nothing after the close", { timeout: 20_000 }, async () => {
    const { a, b, sockets } = await pair({ maxMessageBytes: 100 });
    const heard: string[] = [];
    b.handleWith({
      onMessage: (frame) => void heard.push(`handler message ${frame}`),
      onRefused: (code) => void heard.push(`handler refused ${code}`),
      onClose: (code) => void heard.push(`handler close ${code}`),
    });
    b.on("message", (frame) => void heard.push(`listener message ${frame}`));
    b.on("close", (code) => void heard.push(`listener close ${code}`));
    const got = waitFor(b, "message", T);
    a.send("hello");
    await got;
    const closed = waitFor(b, "close", T);
    sockets.a.write(encodeMessage("x".repeat(101))); // over the limit: refused, then closed
    await closed;
    b.emit("message", "after close"); // as a transport might, late: nobody hears it
    assert.deepEqual(heard, [
      "handler message hello",
      "listener message hello",
      `handler refused ${ErrorCode.FRAME_TOO_LARGE}`,
      `handler close ${CloseCode.TOO_LARGE}`,
      `listener close ${CloseCode.TOO_LARGE}`,
    ]);
  });

  it("close delivers the code and reason to the other end", { timeout: 20_000 }, async () => {
    const { a, b } = await pair();
    const closed = waitFor(b, "close", T);
    a.close(CloseCode.TOPIC_MISMATCH, "topic mismatch: test");
    assert.deepEqual(await closed, [CloseCode.TOPIC_MISMATCH, "topic mismatch: test"]);
    assert.equal(a.closed, true);
  });

  it("a frame header announcing more than maxMessageBytes is refused and closes with 1009, before its body arrives", { timeout: 20_000 }, async () => {
    const { a, b, sockets } = await pair({ maxMessageBytes: 100 });
    const refused = waitFor(b, "refused", T);
    const closedRemote = waitFor(a, "close", T);
    sockets.a.write(encodeMessage("x".repeat(101)).subarray(0, 8)); // header only
    const [code] = await refused;
    assert.equal(code, ErrorCode.FRAME_TOO_LARGE);
    assert.equal(b.closed, true);
    assert.equal((await closedRemote)[0], CloseCode.TOO_LARGE);
  });

  it("a frame of exactly maxMessageBytes passes", { timeout: 20_000 }, async () => {
    const { a, b } = await pair({ maxMessageBytes: 100 });
    const got = waitFor(b, "message", T);
    a.send("y".repeat(100));
    assert.equal((await got)[0].length, 100);
  });

  it("an unknown frame kind is refused and closes the link", { timeout: 20_000 }, async () => {
    const { b, sockets } = await pair();
    const refused = waitFor(b, "refused", T);
    sockets.a.write(encodeFrame(9 as FrameKind, Buffer.from("?")));
    assert.equal((await refused)[0], ErrorCode.BAD_MESSAGE);
    assert.equal(b.closed, true);
  });

  it("heartbeat (injected clock): a peer that never answers is dropped after one silent interval", { timeout: 20_000 }, async () => {
    const clock = new ManualClock();
    const sockets = await socketPair();
    cleanups.push(() => sockets.close());
    const conn = new StreamConnection(sockets.b, { outgoing: false }, { heartbeatInterval: 1000, maxMessageBytes: 1024, clock });
    const pinged = waitFor(sockets.a, "data", T);
    clock.advance(1000); // first tick: sends a ping
    const [frame] = await pinged;
    assert.equal((frame as Buffer)[4], FrameKind.PING);
    assert.equal(conn.closed, false);
    const closed = waitFor(conn, "close", T);
    clock.advance(1000); // nothing came back
    assert.deepEqual(await closed, [CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout"]);
    assert.equal(clock.pending, 0, "no timer left behind");
  });

  it("heartbeat (injected clock): a live peer answers every ping and is kept", { timeout: 20_000 }, async () => {
    const clock = new ManualClock();
    const { a, b, sockets } = await pair({ heartbeatInterval: 1000, clock });
    for (let i = 0; i < 5; i++) {
      // Each tick both ends ping; any frame from the other end (its ping or its pong) proves it alive.
      const heardA = waitFor(sockets.a, "data", T);
      const heardB = waitFor(sockets.b, "data", T);
      clock.advance(1000);
      await Promise.all([heardA, heardB]);
    }
    assert.equal(a.closed, false);
    assert.equal(b.closed, false);
  });
});

describe("TcpNetwork: bad input on the stream carrier", () => {
  const nodes: ToolDb[] = [];
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
  });
  const track = (db: ToolDb) => (nodes.push(db), db);
  const raw = async (port: number) => {
    const s = await rawSocket(port);
    sockets.push(s);
    return s;
  };

  it("garbage bytes (an HTTP request) are refused as an oversized frame; the server keeps serving", { timeout: 20_000 }, async () => {
    const srv = track(await tcpServer());
    const refused = waitFor(srv, "refused", T);
    const s = await raw(portOf(srv));
    const closeFrame = closeFrameOf(s);
    s.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const [event] = await refused;
    assert.equal(event.code, ErrorCode.FRAME_TOO_LARGE);
    assert.equal((await closeFrame).code, CloseCode.TOO_LARGE);
    const cli = track(await tcpClient(srv));
    await waitFor(cli, "connect", T);
  });

  it("a well-framed message that is not JSON closes the link with 4000", { timeout: 20_000 }, async () => {
    const srv = track(await tcpServer());
    const s = await raw(portOf(srv));
    const closeFrame = closeFrameOf(s);
    s.write(encodeMessage("{not json"));
    const { code, reason } = await closeFrame;
    assert.equal(code, CloseCode.BAD_MESSAGE);
    assert.match(reason, /malformed JSON/);
  });

  it("a handshake split into single bytes completes; an oversized frame after it drops only that link", { timeout: 20_000 }, async () => {
    const srv = track(await tcpServer({ maxMessageBytes: 4096 }));
    const id = await rawIdentity();
    const s = await raw(portOf(srv));
    const opened = waitFor(srv, "peer-connect", T);
    for (const byte of encodeMessage(JSON.stringify(await signedPing(id, TOPIC)))) s.write(Buffer.of(byte));
    assert.equal((await opened)[0].peerId, id.clientId);
    const dropped = waitFor(srv, "peer-disconnect", T);
    const closeFrame = closeFrameOf(s);
    s.write(encodeMessage("z".repeat(5000)));
    assert.equal((await dropped)[0].code, CloseCode.TOO_LARGE);
    assert.equal((await closeFrame).code, CloseCode.TOO_LARGE);
  });

  it("a linked peer that floods heartbeat pings and never reads gets pongs only while nothing is queued; the server's memory stays its own", { timeout: 60_000 }, async () => {
    const srv = track(await tcpServer());
    const writer = track(await tcpClient(srv));
    await waitFor(writer, "connect", T);
    await writer.putData("kept", "before the flood");
    const link = await (await RawTcpLink.open(portOf(srv), { topic: TOPIC })).handshake();
    const connection = () => srv.network.peers.find((p) => p.clientId === link.id.clientId)?.connection as StreamConnection | undefined;
    assert.ok(connection(), "the attacker is linked");
    // Stops reading, then sends 20 MB of 5-byte pings (4,000,000 pings) as fast as the socket takes them.
    const socket = link.socket as net.Socket;
    socket.pause();
    const batch = Buffer.concat(Array.from({ length: 20_000 }, () => encodeFrame(FrameKind.PING)));
    for (let i = 0; i < 200; i++) if (!socket.write(batch)) await new Promise((r) => socket.once("drain", r));
    await new Promise<void>((resolve, reject) => socket.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
    // Once the kernel's buffers toward the attacker are full, the pings go unanswered instead of queueing a pong each.
    await waitUntil(() => (connection()?.pongsSkipped ?? 0) > 1_000_000, 30_000, "the server to read the flood");
    const backlog = connection()!.sendBacklog;
    assert.ok(backlog < 64 * 1024, `the server holds ${backlog} bytes of pongs for a peer that does not read`);
    // The victim's data and service are intact.
    const reader = track(await tcpClient(srv));
    await waitFor(reader, "connect", T);
    assert.equal(await reader.getData("kept"), "before the flood");
    await writer.putData("after", "the flood", false, { ack: 1, timeoutMs: T });
    assert.equal(await reader.getData("after"), "the flood");
    link.terminate();
  });

  it("a peer that connects and never handshakes is closed at handshakeTimeout", { timeout: 20_000 }, async () => {
    const srv = track(await tcpServer({ handshakeTimeout: 200 }));
    const refused = waitFor(srv, "refused", T, (e) => e.code === ErrorCode.HANDSHAKE_TIMEOUT);
    const s = await raw(portOf(srv));
    const closeFrame = closeFrameOf(s);
    await refused;
    assert.equal((await closeFrame).code, CloseCode.HANDSHAKE_TIMEOUT);
    assert.equal(srv.network.peers.length, 0);
  });
});

describe("TcpNetwork heartbeat", () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("one heartbeat timer for every link (injected clock): a peer that stops answering pings is dropped, live peers are kept", { timeout: 20_000 }, async () => {
    const clock = new ManualClock(Date.now());
    const srv = await tcpServer({ clock, heartbeatInterval: 1000 });
    nodes.push(srv);
    const idleTimers = clock.pending;
    const links: RawTcpLink[] = [];
    for (let i = 0; i < 3; i++) links.push(await (await RawTcpLink.open(portOf(srv), { topic: TOPIC })).handshake());
    assert.equal(clock.pending, idleTimers + 1, "three links share one heartbeat timer");
    const [silent, ...live] = links as [RawTcpLink, ...RawTcpLink[]];
    silent.answersPings = false; // alive at the TCP level, dead to the protocol
    // The live links answer the ping as they read it; a request answered after that proves the server read the pong.
    await silentPeerDropped(srv, clock, 1000, silent.id.clientId, () =>
      Promise.all(
        live.map(async (link) => {
          const ping = await link.ping();
          const answered = link.next((f) => f.type === "pong" && f.id === ping.id);
          link.send(ping);
          await answered;
        }),
      ),
    );
    await silent.waitClose();

    // The timer stops with the last link.
    const gone = waitForCount(srv, "peer-disconnect", 2, T);
    for (const link of live) link.terminate();
    await gone;
    assert.equal(clock.pending, idleTimers, "no heartbeat timer without links");
  });
});
