/**
 * Unfinished fragmented messages on WebSocket links, the WebSocket form of
 * test/partial-frames-budget.test.ts: peers that prove a fresh key each send
 * a text message in fragments (a first frame with FIN=0, then continuation
 * frames) up to just under the 1 MiB `maxPayload`, never send the last
 * fragment, and answer the server's heartbeat pings (control frames may come
 * between fragments), so the link looks alive. `ws` keeps the fragments of
 * each link until its message completes. The bytes held for unfinished
 * messages count against the transport's `maxReceiveBuffered` as the stream
 * links' unfinished frames do: past it, the links holding the most are
 * closed (MEMORY_LIMIT, close code 4009). Real sockets on 127.0.0.1.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import { ToolDb } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { CHUNK_OVERHEAD_BYTES, InboundBudget } from "../src/network/inbound-budget.js";
import { WsConnection } from "../src/network/ws-connection.js";
import { DEFAULT_LIMITS } from "../src/limits/limits.js";
import { portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, closedAfterEachTest, terminateRawLinks } from "./helpers/raw-peer.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";
import { withTimeout } from "./helpers/wait.js";

const T = 15_000;
const MIB = 1024 * 1024;
/** Bytes sent of each unfinished message: just under `maxPayload` (1 MiB). */
const BODY = MIB - 8 * 1024;
const PART = 64 * 1024;
/** The server's heartbeat interval: short, so that several visits pass quickly. */
const HEARTBEAT = 250;
/** Heartbeat visits (each a ping the attacker answers) the links must outlast to count as held. */
const VISITS = 3;
const unhandled = collectUnhandledRejections();

/** Bytes `ws` holds in fragments of unfinished messages on the server's links (its internals: for the failure message only). */
function fragmentBytesInWs(srv: ToolDb): number {
  const wss = (srv.network as unknown as { wss?: WebSocketServer }).wss;
  let bytes = 0;
  for (const client of wss?.clients ?? []) bytes += (client as unknown as { _receiver?: { _totalPayloadLength?: number } })._receiver?._totalPayloadLength ?? 0;
  return bytes;
}

describe("unfinished fragmented messages on WebSocket links", () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("links holding unfinished fragmented messages past the server's budget are closed; the server still serves a client", { timeout: 120_000 }, async (t) => {
    const srv = await startServer({ heartbeatInterval: HEARTBEAT });
    nodes.push(srv);
    await srv.putData("kept", "intact");
    const kept = await srv.records.get("kept");
    const refusals: string[] = [];
    srv.on("refused", (e) => refusals.push(e.code));

    // Enough unfinished messages to hold a quarter more than the budget.
    const count = Math.ceil((DEFAULT_LIMITS.maxReceiveBuffered * 1.25) / BODY);
    const attackers: Array<{ link: RawLink; pings: number; since: number }> = [];
    for (let i = 0; i < count; i++) {
      const link = await RawLink.open(portOf(srv), { topic: "test" });
      await link.provenHandshake();
      const attacker = { link, pings: 0, since: Date.now() };
      // ws answers each ping with a pong at once (autoPong): the link looks alive.
      link.ws.on("ping", () => attacker.pings++);
      for (let sent = 0; sent < BODY; sent += PART) link.sendPart(Buffer.alloc(Math.min(PART, BODY - sent), 0x20), false);
      attackers.push(attacker);
    }
    assert.equal(attackers.length, count, "every attacking link was made");

    // Several heartbeat visits since each link sent its fragments, every ping answered.
    await waitUntil(() => attackers.every((a) => a.link.isClosed || a.pings >= VISITS), T, `${VISITS} heartbeat pings to every open attacking link`);
    const open = attackers.filter((a) => !a.link.isClosed);
    const heldMs = open.length > 0 ? Date.now() - Math.min(...open.map((a) => a.since)) : 0;
    t.diagnostic(`${open.length} of ${count} links open, ws holding ${fragmentBytesInWs(srv)} bytes of fragments, the oldest for ${heldMs} ms (${VISITS}+ heartbeats of ${HEARTBEAT} ms)`);
    const allowed = Math.floor(DEFAULT_LIMITS.maxReceiveBuffered / BODY);
    assert.ok(
      open.length <= allowed,
      `the server still holds ${open.length} of ${count} links, each with ${BODY} bytes of an unfinished fragmented message ` +
        `(${fragmentBytesInWs(srv)} bytes in ws), for ${heldMs} ms and ${VISITS}+ heartbeats answered: at most ${allowed} fit the budget`,
    );
    for (const { link } of attackers.filter((a) => a.link.isClosed)) {
      assert.deepEqual(await link.waitClose(), { code: CloseCode.OVERLOADED, reason: "unfinished frames over the budget" });
    }
    assert.ok(refusals.includes("MEMORY_LIMIT"), `refusals: ${refusals.join(", ")}`);

    // The server still serves, and its records are intact.
    const cli = await startClient([srv]);
    nodes.push(cli);
    assert.equal(await cli.getData("kept", false, T), "intact");
    assert.deepEqual(await srv.records.get("kept"), kept, "the stored record is unchanged");
    await cli.putData("after", "stored");
    await waitUntil(async () => (await srv.records.get("after"))?.v === "stored", T, "the client's write stored on the server");
    // Gone attackers hold nothing; the honest client's messages and pongs are not counted.
    terminateRawLinks();
    const inbound = (srv.network as unknown as { inbound: InboundBudget }).inbound;
    await waitUntil(() => inbound.bytes === 0, T, `the budget back to 0 (${inbound.bytes} bytes)`);
    assert.deepEqual(unhandled, []);
  });
});

describe("what a WebSocket link reports to its transport's budget", () => {
  const closers: Array<() => void> = [];
  after(() => closers.forEach((close) => close()));

  it("nothing after messages, pings and pongs both ways; an unfinished message's bytes while it lasts; a dialled link past the budget is closed", { timeout: 20_000 }, async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    closers.push(() => server.close());
    await once(server, "listening");
    const budgets = { accepted: new InboundBudget(200 * 1024), dialled: new InboundBudget(200 * 1024) };
    const accepting = new Promise<[WebSocket, IncomingMessage]>((resolve) => server.once("connection", (ws, req) => resolve([ws, req])));
    const dialledWs = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
    // Heartbeats of 20 ms on both ends: each pings the other, each answers.
    const dialled = new WsConnection(dialledWs, { outgoing: true, transport: "websocket" }, 20, { inbound: budgets.dialled });
    const [acceptedWs, req] = await withTimeout(accepting, T, "the server to accept");
    const accepted = new WsConnection(acceptedWs, { outgoing: false, transport: "websocket" }, 20, { stream: req.socket, inbound: budgets.accepted });
    closers.push(() => dialled.close(), () => accepted.close());
    const got = { accepted: [] as string[], dialled: [] as string[] };
    const refused: string[] = [];
    accepted.on("message", (m) => got.accepted.push(m));
    dialled.on("message", (m) => got.dialled.push(m));
    dialled.on("refused", (code) => refused.push(code));
    const pings = { accepted: 0, dialled: 0 };
    acceptedWs.on("ping", () => pings.accepted++);
    dialledWs.on("ping", () => pings.dialled++);
    await withTimeout(once(dialledWs, "open"), T, "the link to open");

    for (let i = 0; i < 10; i++) {
      accepted.send(`to dialled ${i}`);
      dialled.send(`to accepted ${i}`);
      acceptedWs.ping(Buffer.alloc(i * 12)); // pings with payloads too (up to 108 bytes)
    }
    await waitUntil(() => got.accepted.length === 10 && got.dialled.length === 10 && pings.accepted >= 10 && pings.dialled >= 20, T, "messages and heartbeats both ways");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual([budgets.accepted.bytes, budgets.dialled.bytes], [0, 0], "complete messages and control frames are not held");

    // Two fragments of 50 KiB each way (a 4-byte header each; a client's carries a 4-byte mask key too), then the last.
    for (const [sender, side] of [[dialledWs, "accepted"], [acceptedWs, "dialled"]] as const) {
      for (let i = 0; i < 2; i++) sender.send(Buffer.alloc(50 * 1024, 0x20), { binary: false, fin: false });
      const budget = budgets[side];
      await waitUntil(() => budget.bytes >= 100 * 1024, T, `${side}: the fragments counted`);
      // The bytes and headers, and CHUNK_OVERHEAD_BYTES for each read of them (ws keeps each read: a few on loopback).
      assert.ok(budget.bytes <= 100 * 1024 + 32 + 8 * CHUNK_OVERHEAD_BYTES, `${side}: ${budget.bytes} bytes held for 100 KiB of fragments`);
      sender.send(Buffer.from("end"), { binary: false, fin: true });
      await waitUntil(() => got[side].length === 11, T, `${side}: the message completed`);
      assert.equal(got[side][10]!.length, 100 * 1024 + 3);
      assert.equal(budget.bytes, 0, `${side}: nothing held once the message completed`);
    }

    // Past the budget (200 KiB): the link holding the most is closed.
    const closed = new Promise<[number, Buffer]>((resolve) => acceptedWs.once("close", (code: number, reason: Buffer) => resolve([code, reason])));
    for (let i = 0; i < 4; i++) acceptedWs.send(Buffer.alloc(64 * 1024, 0x20), { binary: false, fin: false });
    const [code, reason] = await withTimeout(closed, T, "the dialled link to close");
    assert.deepEqual([code, reason.toString()], [CloseCode.OVERLOADED, "unfinished frames over the budget"]);
    assert.deepEqual(refused, ["MEMORY_LIMIT"]);
    assert.equal(budgets.dialled.bytes, 0);
  });
});
