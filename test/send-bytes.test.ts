/**
 * The server's send budget counts queues in bytes (the socket's buffered
 * amount), so a frame must reach it in UTF-8 bytes too, not in UTF-16 code
 * units: a frame of multi-byte text is up to 3 × its length. Real sockets.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { WsConnection } from "../src/network/ws-connection.js";

describe("a frame's size reaches the send budget in UTF-8 bytes", () => {
  const closers: (() => void)[] = [];
  after(() => closers.forEach((close) => close()));

  it("send and sendParts ask the budget for the frame's UTF-8 bytes, and the peer gets the frame whole", { timeout: 10_000 }, async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    closers.push(() => server.close());
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    const received: string[] = [];
    const both = new Promise<void>((resolve) =>
      server.on("connection", (ws) =>
        ws.on("message", (data) => {
          if (received.push(String(data)) === 2) resolve();
        }),
      ),
    );
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    await once(socket, "open");
    const link = new WsConnection(socket, { outgoing: true, transport: "websocket" }, 60_000);
    closers.push(() => link.close());
    const asked: number[] = [];
    link.handleWith({ onMessage: () => undefined, onRefused: () => undefined, onClose: () => undefined, mayQueue: (bytes) => (asked.push(bytes), true) });
    const text = "é€😀".repeat(1000); // 2 + 3 + 4 bytes in 1 + 1 + 2 code units
    link.send(text);
    link.sendParts(['{"v":"', text, '"}']);
    assert.deepEqual(asked, [Buffer.byteLength(text), Buffer.byteLength(text) + 8]);
    assert.ok(asked[0]! > text.length * 2, "bytes, not code units");
    await both; // bounded by the test's timeout
    assert.deepEqual(received, [text, `{"v":"${text}"}`]);
  });
});
