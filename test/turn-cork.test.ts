/**
 * Frames written to one WebSocket in a turn of the event loop go out in one
 * write: its TCP socket is corked at the first frame and uncorked after the
 * turn. Real sockets on 127.0.0.1.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { corkForTurn } from "../src/network/turn-cork.js";
import { WsConnection } from "../src/network/ws-connection.js";
import { withTimeout } from "./helpers/wait.js";

const T = 10_000;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolves once `done()` holds, checked every 5 ms; fails after T. */
function until(done: () => boolean, what: string): Promise<void> {
  return withTimeout(
    (async () => {
      while (!done()) await new Promise((r) => setTimeout(r, 5));
    })(),
    T,
    what,
  );
}

/** Counts the times a socket's writes were let go (an uncork that leaves it uncorked: ws corks each frame's two parts itself). */
function flushes(socket: Socket): { count: number } {
  const counted = { count: 0 };
  const uncork = socket.uncork;
  socket.uncork = () => {
    uncork.call(socket);
    if (socket.writableCorked === 0) counted.count++;
  };
  return counted;
}

describe("frames of a turn in one write", () => {
  it("corks each stream once a turn and uncorks it after the turn", async () => {
    const fake = () => {
      const counts = { corks: 0, uncorks: 0 };
      return { counts, stream: { cork: () => counts.corks++, uncork: () => counts.uncorks++ } };
    };
    const [a, b] = [fake(), fake()];
    for (let i = 0; i < 5; i++) corkForTurn(a.stream);
    corkForTurn(b.stream);
    assert.deepEqual([a.counts, b.counts], [{ corks: 1, uncorks: 0 }, { corks: 1, uncorks: 0 }], "corked once, still corked during the turn");
    await nextTurn();
    assert.deepEqual([a.counts, b.counts], [{ corks: 1, uncorks: 1 }, { corks: 1, uncorks: 1 }]);
    corkForTurn(a.stream);
    assert.equal(a.counts.corks, 2, "corked again in the next turn");
    await nextTurn();
    assert.equal(a.counts.uncorks, 2);
  });

  it("300 frames written in one turn, each way, arrive whole and in order in one write from each socket", { timeout: T }, async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    const port = (wss.address() as { port: number }).port;
    const accepted = new Promise<{ conn: WsConnection; counts: { count: number } }>((resolve) =>
      wss.once("connection", (ws: WebSocket, req: IncomingMessage) => {
        const counts = flushes(req.socket);
        resolve({ conn: new WsConnection(ws, { outgoing: false, transport: "websocket" }, 0, { stream: req.socket }), counts });
      }),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    let dialedFlushes: { count: number } | undefined;
    ws.once("upgrade", (response: IncomingMessage) => (dialedFlushes = flushes(response.socket)));
    const dialed = new WsConnection(ws, { outgoing: true, transport: "websocket" }, 0);
    try {
      await withTimeout(new Promise((resolve) => ws.once("open", resolve)), T, "the link to open");
      const { conn: server, counts: serverFlushes } = await withTimeout(accepted, T, "the server to accept");
      const frames = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i, pad: "x".repeat(i) }));
      const got = { server: [] as string[], dialed: [] as string[] };
      server.on("message", (m) => got.server.push(m));
      dialed.on("message", (m) => got.dialed.push(m));
      for (const frame of frames) server.send(frame);
      for (const frame of frames) dialed.send(frame);
      assert.equal(serverFlushes.count + (dialedFlushes?.count ?? NaN), 0, "nothing let go during the turn");
      await until(() => got.server.length === frames.length && got.dialed.length === frames.length, "every frame");
      assert.deepEqual(got.dialed, frames);
      assert.deepEqual(got.server, frames);
      assert.equal(serverFlushes.count, 1, "the accepted socket's 300 frames went in one write");
      assert.equal(dialedFlushes?.count, 1, "the dialed socket's too");

      // A large frame is not held back for the turn: the send budget must see the queue the kernel leaves.
      server.send("small");
      const big = "b".repeat(200 * 1024);
      server.send(big);
      assert.equal(serverFlushes.count, 2, "written at once, with the small frame before it");
      await until(() => got.dialed.length === frames.length + 2, "the large frame");
      assert.deepEqual(got.dialed.slice(-2), ["small", big]);
      server.close();
      dialed.close();
    } finally {
      ws.terminate();
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});
