/**
 * Unfinished frames (outside check, attack 4; attack/partial-frames.mjs runs
 * it against `serve --hyperswarm`): peers that prove a fresh key each, send a
 * frame header just under the 1 MiB limit and all of its body but the last
 * bytes, then one byte now and then (any byte counts as a sign of life), so
 * the frame never completes. Each link holds about 1 MiB in the server's
 * decoder for as long as it likes; 100 such links held 113 MiB more
 * external memory for as long as they stayed, and `maxConnections` (1,024)
 * of them about 1 GiB, past the 64 MiB the server budgets for what it sends.
 * The bytes held for unfinished frames have a bound over all links
 * (`maxReceiveBuffered`), as the send queue has (`maxSendBuffered`): past
 * it, the links holding the most are closed. Real Hyperswarm on a private HyperDHT testnet on loopback.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import HyperDHT from "hyperdht";
import type { SwarmSocket } from "hyperswarm";
import { ToolDb } from "../src/index.js";
import { HyperswarmNetwork, topicKey } from "../src/network/hyperswarm-network.js";
import { FrameDecoder, FrameKind } from "../src/network/stream-framing.js";
import { DEFAULT_LIMITS } from "../src/limits/limits.js";
import { CHUNK_OVERHEAD_BYTES } from "../src/network/inbound-budget.js";
import { fileTestnet, swarmOn } from "./helpers/hyperdht-testnet.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { RawTcpLink, closedAfterEachTest } from "./helpers/raw-peer.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
const MIB = 1024 * 1024;
/** Body bytes sent of each unfinished frame (the frame announces 100 more). */
const BODY = MIB - 8 * 1024;
const testnet = fileTestnet();
const unhandled = collectUnhandledRejections();

interface ConnectingDht {
  connect(publicKey: Buffer, opts: { keyPair: ReturnType<typeof HyperDHT.keyPair> }): SwarmSocket & { once(e: string, f: () => void): unknown; destroyed: boolean };
  lookup(topic: Buffer): AsyncIterable<{ peers: Array<{ publicKey: Buffer }> }>;
}

describe("the bytes an unfinished frame holds", () => {
  it("a few bytes after a complete frame are copied out of it, not kept as a view that pins the whole frame", () => {
    const decoder = new FrameDecoder(2 * MIB);
    const frame = Buffer.alloc(5 + MIB);
    frame.writeUInt32BE(MIB + 1, 0);
    frame[4] = FrameKind.PING;
    const next = Buffer.alloc(4);
    next.writeUInt32BE(MIB + 1, 0); // announces another 1 MiB frame, which never comes
    // Chunks that complete the frame only when joined (a copy of the whole frame), with the next header behind it.
    const result = decoder.push(frame.subarray(0, 100));
    assert.equal(result.ok && result.frames.length, 0);
    const done = decoder.push(Buffer.concat([frame.subarray(100), next]));
    assert.equal(done.ok && done.frames.length, 1);
    assert.equal(decoder.pendingBytes, 4);
    // The next frame's own small first buffer (not a view of the chunk that carried its header, nor the 1 MiB it announced).
    const body = (decoder as unknown as { body?: Buffer }).body;
    assert.ok(body && body.length <= 4096 && body.buffer.byteLength === body.length, `held: ${body?.length} bytes in a buffer of ${body?.buffer.byteLength}`);
    assert.equal(decoder.heldBytes, body.length + CHUNK_OVERHEAD_BYTES);
  });
});

describe("unfinished frames on Hyperswarm links", () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("links holding unfinished frames past the server's memory budget are closed; the server still serves a client", { timeout: 120_000 }, async () => {
    const topic = `hs-partial-${process.pid}`;
    const srv = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic, ...FAST, networkAdapter: swarmOn(testnet()) });
    nodes.push(srv);
    await srv.ready;
    await (srv.network as HyperswarmNetwork).joined;
    await srv.putData("kept", "intact");

    const dht = testnet().createNode() as unknown as ConnectingDht;
    let serverKey: Buffer | undefined;
    for await (const reply of dht.lookup(topicKey(topic))) for (const p of reply.peers) serverKey ??= p.publicKey;
    assert.ok(serverKey, "the server is on the topic");

    // Enough unfinished frames to hold a quarter more than the budget.
    const count = Math.ceil((DEFAULT_LIMITS.maxReceiveBuffered * 1.25) / BODY);
    const sockets: Array<SwarmSocket & { destroyed: boolean }> = [];
    for (let i = 0; i < count; i++) {
      const socket = dht.connect(serverKey, { keyPair: HyperDHT.keyPair() });
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => {
        socket.once("open", resolve);
        socket.once("close", resolve);
      });
      if (socket.destroyed) continue;
      await (await RawTcpLink.over(socket, { topic })).provenHandshake();
      const header = Buffer.alloc(5);
      header.writeUInt32BE(BODY + 100 + 1, 0);
      header[4] = FrameKind.MESSAGE;
      socket.write(header);
      socket.write(Buffer.alloc(BODY, 0x20));
      sockets.push(socket);
    }
    assert.equal(sockets.length, count, "every attacking link was made");
    // A byte now and then: the links look alive.
    const trickle = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write(Buffer.from(" "));
    }, 1000);
    try {
      const allowed = Math.floor(DEFAULT_LIMITS.maxReceiveBuffered / BODY);
      try {
        await waitUntil(() => srv.network.peers.length <= allowed, T, `at most ${allowed} links holding unfinished frames`);
      } catch (err) {
        throw new Error(`${(err as Error).message}: the server still holds ${srv.network.peers.length} of ${count} links, each with ~1 MiB of an unfinished frame`);
      }
      // The server still serves.
      const cli = new ToolDb({ topic, ...FAST, networkAdapter: swarmOn(testnet()) });
      nodes.push(cli);
      await cli.ready;
      await waitUntil(() => cli.network.peers.some((p) => p.isServer), T, "the client to link to the server");
      assert.equal(await cli.getData("kept", false, T), "intact");
    } finally {
      clearInterval(trickle);
      for (const s of sockets) s.destroy();
    }
    assert.deepEqual(unhandled, []);
  });
});
