/**
 * Frames sent a byte at a time (outside check: attack-tcp-dribble.mjs,
 * attack-ws-dribble.mjs). Each read of a socket is a Buffer of its own,
 * some 400 bytes of memory for a one-byte read, and the stream decoder (as
 * `ws`'s receiver does) kept every read of an unfinished frame until it
 * completed, while the receive budget (`maxReceiveBuffered`) counted only
 * the frame's bytes: 20 TCP links sending 472 KB a byte per segment grew
 * the server's heap by 90 MB and its RSS by 190 MB. The stream decoder now
 * copies short reads into a few buffers and is charged what it holds; a
 * WebSocket link is charged a per-read overhead for each read of its
 * unfinished message, and `ws` keeps at most 256 fragments and 16,384 reads
 * of one message (its defaults: 16,384 and 262,144). Real sockets on 127.0.0.1.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { ErrorCode, ToolDb } from "../src/index.js";
import { FrameDecoder, FrameKind, encodeFrame, encodeMessage } from "../src/network/stream-framing.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { receivePieces } from "../src/network/websocket-network.js";
import { CHUNK_OVERHEAD_BYTES } from "../src/network/inbound-budget.js";
import { CloseCode } from "../src/network/connection.js";
import { signRecord } from "../src/node/record-signer.js";
import { randomId } from "../src/base/random.js";
import { portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, RawTcpLink, closedAfterEachTest, rawIdentity } from "./helpers/raw-peer.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
const KIB = 1024;
const unhandled = collectUnhandledRejections();
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Buffers the decoder keeps for its unfinished frame (its internals: what the fix bounds), and their bytes of memory. */
function buffersHeld(decoder: FrameDecoder): { count: number; bytes: number } {
  const d = decoder as unknown as { body?: Buffer };
  return d.body ? { count: 1, bytes: d.body.buffer.byteLength } : { count: 0, bytes: 0 };
}

/** A deterministic generator (a test must not depend on luck). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe("a frame decoder fed a byte at a time", () => {
  it("keeps one buffer, not one a read, grown with what arrived, and is charged what it holds", { timeout: T }, () => {
    const decoder = new FrameDecoder(1024 * KIB);
    const body = Buffer.alloc(300 * KIB, 0x61);
    const frame = encodeFrame(FrameKind.MESSAGE, body);
    const after = encodeMessage("next");
    let ready: Array<{ kind: number; payload: Buffer }> = [];
    for (let i = 0; i < frame.length; i++) {
      const result = decoder.push(frame.subarray(i, i + 1));
      assert.ok(result.ok);
      ready = ready.concat(result.frames);
      if (i === 200 * KIB) {
        assert.equal(decoder.pendingBytes, 200 * KIB + 1);
        const held = buffersHeld(decoder);
        assert.equal(held.count, 1);
        assert.ok(held.bytes >= 200 * KIB + 1 && held.bytes <= 2 * (200 * KIB + 1), `one buffer of about what arrived: ${held.bytes} bytes`);
        assert.equal(decoder.heldBytes, held.bytes + CHUNK_OVERHEAD_BYTES);
      }
      if (i < 3) assert.equal(decoder.heldBytes, i + 1, "a partial header holds its bytes");
      // The header alone announces 300 KiB: what it reserves is a small first buffer, not the announced length.
      if (i === 4) assert.ok(decoder.heldBytes <= 4096 + CHUNK_OVERHEAD_BYTES, `charged ${decoder.heldBytes} for one byte of body`);
    }
    assert.equal(ready.length, 1);
    assert.ok(ready[0]!.payload.equals(body));
    assert.equal(decoder.heldBytes, 0);
    const next = decoder.push(after);
    assert.ok(next.ok && next.frames.length === 1 && next.frames[0]!.payload.toString() === "next");
  });

  it("holds and is charged about a 1 MiB frame's length whatever the sizes of the reads that bring it", { timeout: T }, () => {
    const random = lcg(11);
    // Ordinary traffic over a WAN: a spill buffer closed after every long read held 7.25, 3.6 and 16 MiB for the first three.
    const patterns: Array<[string, (n: number) => number]> = [
      ["1448 / 8192 alternating", (n) => (n % 2 === 0 ? 1448 : 8192)],
      ["1-6 x 1448 at random", () => 1448 * (1 + Math.floor(random() * 6))],
      ["100 / 4096 alternating", (n) => (n % 2 === 0 ? 100 : 4096)],
      ["1 to 70 KiB at random", () => 1 + Math.floor(random() * 70 * KIB)],
      ["536 bytes", () => 536],
    ];
    const body = Buffer.alloc(1024 * KIB - 1, 0x62);
    const frame = encodeFrame(FrameKind.MESSAGE, body);
    for (const [name, size] of patterns) {
      const decoder = new FrameDecoder(1024 * KIB);
      let most = 0;
      let mostHeld = 0;
      const got: Buffer[] = [];
      for (let at = 0, n = 0; at < frame.length; n++) {
        const cut = size(n);
        // Each read a Buffer of its own, as a socket gives them.
        const result = decoder.push(Buffer.from(frame.subarray(at, at + cut)));
        assert.ok(result.ok);
        for (const f of result.frames) got.push(f.payload);
        most = Math.max(most, decoder.heldBytes);
        mostHeld = Math.max(mostHeld, buffersHeld(decoder).bytes);
        at += cut;
      }
      assert.equal(got.length, 1, name);
      assert.ok(got[0]!.equals(body), name);
      assert.ok(most <= 1.1 * 1024 * KIB, `${name}: charged up to ${most} bytes`);
      assert.ok(mostHeld <= 1024 * KIB, `${name}: held up to ${mostHeld} bytes`);
      assert.ok(most >= mostHeld, `${name}: charged ${most}, less than the ${mostHeld} held`);
      assert.equal(decoder.heldBytes, 0);
    }
  });

  it("decodes any cutting of a stream of frames as the frames sent", { timeout: T }, () => {
    const random = lcg(7);
    const frames: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const size = random() < 0.2 ? Math.floor(random() * 40 * KIB) : Math.floor(random() * 300);
      frames.push(Buffer.alloc(size, i % 251));
    }
    const stream = Buffer.concat(frames.map((p, i) => encodeFrame(i % 7 === 0 ? FrameKind.PING : FrameKind.MESSAGE, p)));
    for (const maxCut of [1, 7, 3000, 9000, 70 * KIB]) {
      const decoder = new FrameDecoder(64 * KIB);
      const got: Buffer[] = [];
      for (let at = 0; at < stream.length; ) {
        const cut = Math.max(1, Math.floor(random() * maxCut));
        const result = decoder.push(Buffer.from(stream.subarray(at, at + cut)));
        assert.ok(result.ok);
        for (const f of result.frames) got.push(Buffer.from(f.payload));
        at += cut;
      }
      assert.equal(got.length, frames.length, `cuts up to ${maxCut}`);
      got.forEach((p, i) => assert.ok(p.equals(frames[i]!), `frame ${i}, cuts up to ${maxCut}`));
      assert.equal(decoder.pendingBytes, 0);
      assert.equal(decoder.heldBytes, 0);
    }
  });

  it("ws keeps enough reads of one message for maxMessageBytes in 512-byte reads (slow uplinks read 536 to 1,448 bytes)", { timeout: T }, () => {
    assert.deepEqual(receivePieces(1024 * KIB), { maxFragments: 256, maxBufferedChunks: 16_384 });
    // A fixed 16,384 closed an honest 16 MiB message in reads under 1 KiB.
    assert.equal(receivePieces(16 * 1024 * KIB).maxBufferedChunks, 32_768);
    assert.ok(receivePieces(16 * 1024 * KIB).maxBufferedChunks * 536 >= 16 * 1024 * KIB);
  });

  it("refuses a header announcing too much, however it is cut", { timeout: T }, () => {
    const decoder = new FrameDecoder(1000);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1002, 0);
    for (const byte of header.subarray(0, 3)) assert.ok(decoder.push(Buffer.from([byte])).ok);
    const result = decoder.push(header.subarray(3));
    assert.ok(!result.ok && result.declared === 1002);
    assert.equal(decoder.heldBytes, 0);
  });
});

describe("frames dribbled over real sockets", () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("TCP: a put sent a byte a segment is reassembled and stored", { timeout: 60_000 }, async () => {
    const srv = await startServer({ networkAdapter: TcpNetwork });
    nodes.push(srv);
    const id = await rawIdentity();
    const link = await RawTcpLink.open(portOf(srv), { topic: "test", id });
    await link.provenHandshake();
    const record = await signRecord(id.user, "dribbled", "x".repeat(8 * KIB), Date.now(), 0, false);
    const frame = encodeMessage(JSON.stringify({ type: "put", id: randomId(), to: [], ack: true, data: record }));
    const socket = link.socket as unknown as Socket;
    socket.setNoDelay(true);
    const acked = link.next((f) => f.type === "putAck" && JSON.stringify(f.stored).includes(record.h));
    for (let i = 0; i < 3000; i++) {
      socket.write(frame.subarray(i, i + 1));
      await tick();
    }
    socket.write(frame.subarray(3000));
    await acked;
    assert.equal((await srv.records.get("dribbled"))?.h, record.h);
    assert.deepEqual(unhandled, []);
  });

  it("WebSocket: a link dribbling an unfinished message a byte a segment is charged for its reads and closed past the budget; the server still serves", { timeout: 60_000 }, async () => {
    const budget = 1024 * KIB;
    const srv = await startServer({ limits: { maxReceiveBuffered: budget } });
    nodes.push(srv);
    await srv.putData("kept", "intact");
    const kept = await srv.records.get("kept");
    const refusals: string[] = [];
    srv.on("refused", (e) => refusals.push(e.code));
    const link = await RawLink.open(portOf(srv), { topic: "test" });
    await link.provenHandshake();
    const socket = (link.ws as unknown as { _socket: Socket })._socket;
    socket.setNoDelay(true);
    // A masked text frame announcing 512 KiB (half the budget): its bytes alone never go past the budget.
    const header = Buffer.alloc(14);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(512 * KIB), 2);
    socket.write(header);
    // At CHUNK_OVERHEAD_BYTES a read, the budget is passed after ~2,000 one-byte reads; reads merged on a loaded box take longer.
    let sent = 0;
    while (!link.isClosed && sent < 60_000) {
      socket.write(Buffer.from("a"));
      sent++;
      await tick();
    }
    const closed = await link.waitClose();
    assert.ok(sent < 60_000, `the link was not closed after ${sent} one-byte segments`);
    assert.ok(refusals.includes(ErrorCode.MEMORY_LIMIT), refusals.join(", "));
    assert.equal(closed.code, CloseCode.OVERLOADED);
    const cli = await startClient([srv]);
    nodes.push(cli);
    assert.equal(await cli.getData("kept", false, T), "intact");
    assert.deepEqual(await srv.records.get("kept"), kept);
    await waitUntil(() => srv.network.peers.length === 1, T, "only the honest client linked");
    assert.deepEqual(unhandled, []);
  });

  it("WebSocket: a message in hundreds of tiny fragments is refused (ws keeps each as a Buffer); the server still serves", { timeout: 60_000 }, async () => {
    const srv = await startServer();
    nodes.push(srv);
    await srv.putData("kept", "intact");
    const refusals: string[] = [];
    srv.on("refused", (e) => refusals.push(`${e.code} ${e.reason}`));
    const link = await RawLink.open(portOf(srv), { topic: "test" });
    await link.provenHandshake();
    // ToolDb peers send a message in at most 3 fragments; ws's own default let 16,384 one-byte fragments be held.
    for (let i = 0; i < 300 && !link.isClosed; i++) link.sendPart(Buffer.from("a"), false);
    await link.waitClose();
    assert.ok(refusals.some((r) => r.startsWith(ErrorCode.BAD_MESSAGE) && /fragments/.test(r)), refusals.join("\n"));
    const cli = await startClient([srv]);
    nodes.push(cli);
    assert.equal(await cli.getData("kept", false, T), "intact");
    assert.deepEqual(unhandled, []);
  });
});
