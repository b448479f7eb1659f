/**
 * The raw test links (test/helpers/raw-peer.ts) stop waiting for frames
 * once their link is closed: a pending `next()` rejects with a
 * LinkClosedError (the close code and reason) as the close arrives, and a
 * `next()` on a closed link rejects at once, instead of each waiting out
 * its timeout (5 s by default). A frame that came before the close is still
 * found. Over `ws` and over the stream framing on TCP, against a bare
 * server that says hello and closes the link with 4001 "bye" when asked.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { afterEach, describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { FrameDecoder, FrameKind, encodeClose, encodeMessage } from "../src/network/stream-framing.js";
import { LinkClosedError, RawLink, RawTcpLink, type RawPeerLink, terminateRawLinks } from "./helpers/raw-peer.js";

/** Well under next()'s default 5 s: a wait that sat out its timeout fails the test by its own timeout. */
const TEST_MS = 2000;
const HELLO = JSON.stringify({ type: "hello" });

interface Transport {
  name: string;
  /** A server that sends HELLO on each link and closes it with 4001 "bye" when the link sends a "bye" frame. */
  listen(): Promise<{ port: number; close(): Promise<void> }>;
  open(port: number): Promise<RawPeerLink>;
}

const isBye = (text: string) => (JSON.parse(text) as { type?: string }).type === "bye";

const transports: Transport[] = [
  {
    name: "ws",
    async listen() {
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      await new Promise<void>((resolve) => wss.once("listening", resolve));
      wss.on("connection", (ws) => {
        ws.send(HELLO);
        ws.on("message", (data) => isBye(String(data)) && ws.close(4001, "bye"));
      });
      const { port } = wss.address() as net.AddressInfo;
      return {
        port,
        close: async () => {
          for (const ws of wss.clients) ws.terminate();
          await new Promise<void>((resolve) => wss.close(() => resolve()));
        },
      };
    },
    open: (port) => RawLink.open(port, { topic: "raw-peer-close" }),
  },
  {
    name: "tcp",
    async listen() {
      const sockets = new Set<net.Socket>();
      const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => undefined);
        socket.write(encodeMessage(HELLO));
        const decoder = new FrameDecoder(1024 * 1024);
        socket.on("data", (chunk: Buffer) => {
          for (const { kind, payload } of decoder.push(chunk).frames) {
            if (kind === FrameKind.MESSAGE && isBye(payload.toString("utf8"))) socket.end(encodeClose(4001, "bye"));
          }
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as net.AddressInfo;
      return {
        port,
        close: async () => {
          for (const socket of sockets) socket.destroy();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    },
    open: (port) => RawTcpLink.open(port, { topic: "raw-peer-close" }),
  },
];

/** What `wait` settled with by the turn of the event loop after this call: its value or error, or "still pending". */
async function settledByNextTurn(wait: Promise<unknown>): Promise<unknown> {
  const settled = wait.then(
    (frame) => ({ frame }),
    (err: unknown) => err,
  );
  return Promise.race([settled, new Promise((resolve) => setImmediate(() => resolve("still pending")))]);
}

function assertClosedWith(outcome: unknown, code: number, reason: string): void {
  assert.ok(outcome instanceof LinkClosedError, `expected a LinkClosedError, got ${String(outcome instanceof Error ? outcome.message : JSON.stringify(outcome))}`);
  assert.equal(outcome.code, "LINK_CLOSED");
  assert.equal(outcome.closeCode, code);
  assert.equal(outcome.reason, reason);
}

for (const transport of transports) {
  describe(`raw ${transport.name} link: frame waits end with the link`, () => {
    let server: { port: number; close(): Promise<void> } | undefined;
    afterEach(async () => {
      terminateRawLinks();
      await server?.close();
      server = undefined;
    });

    async function helloLink(): Promise<RawPeerLink> {
      server = await transport.listen();
      const link = await transport.open(server.port);
      await link.next((f) => f.type === "hello");
      return link;
    }

    it("a pending next() rejects with the close code and reason as the server closes the link", { timeout: TEST_MS }, async () => {
      const link = await helloLink();
      const pending = link.next((f) => f.type === "never");
      link.send({ type: "bye" });
      assert.deepEqual(await link.waitClose(), { code: 4001, reason: "bye" });
      assertClosedWith(await settledByNextTurn(pending), 4001, "bye");
    });

    it("next() on a closed link rejects at once; a frame that came before the close is still found", { timeout: TEST_MS }, async () => {
      const link = await helloLink();
      link.send({ type: "bye" });
      await link.waitClose();
      assertClosedWith(await settledByNextTurn(link.next((f) => f.type === "never")), 4001, "bye");
      assert.deepEqual(await settledByNextTurn(link.next((f) => f.type === "hello")), { frame: { type: "hello" } });
    });

    it("a pending next() rejects once the test terminates the link", { timeout: TEST_MS }, async () => {
      const link = await helloLink();
      const pending = link.next((f) => f.type === "never");
      link.terminate();
      const { code, reason } = await link.waitClose();
      assertClosedWith(await settledByNextTurn(pending), code, reason);
    });
  });
}
