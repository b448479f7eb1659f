/**
 * Child process for the fan-out and connection benchmarks: one ToolDb server
 * (limits opened for many loopback clients), or with `raw` a plain `ws`
 * server that only holds connections. Answers memory requests (RSS and JS
 * heap in use, after full GCs).
 */
import { WebSocketServer } from "ws";
import { ToolDb } from "../src/index.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../src/network/index.js";

const raw = process.argv[2] === "raw";
let port: number;
let close: () => Promise<void>;
if (raw) {
  // The options WebSocketNetwork gives ws (the rest are ws's defaults on both: no permessage-deflate, client tracking on).
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: DEFAULT_MAX_MESSAGE_BYTES });
  await new Promise((r) => wss.once("listening", r));
  port = (wss.address() as { port: number }).port;
  close = () => new Promise((r) => wss.close(() => r(undefined)));
} else {
  const many = 100_000;
  const server = new ToolDb({
    server: true,
    host: "127.0.0.1",
    port: 0,
    topic: "bench-fanout",
    maxSubscriptionsPerPeer: 10,
    limits: { maxConnections: many, maxUnverifiedConnections: many, maxConnectionsPerIp: many, maxSubscriptions: many, messageRate: Infinity, messageBurst: Infinity },
  });
  await server.ready;
  port = (server.network as unknown as { port: number }).port;
  close = () => server.close();
}
process.send!({ type: "port", port });
process.on("message", async (msg: { type: string }) => {
  if (msg.type === "rss") {
    const gc = (globalThis as { gc?: () => void }).gc;
    // Twice, a turn apart: native memory held by collected objects is freed in a later callback.
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
    gc?.();
    process.send!({ type: "rss", rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed });
  } else if (msg.type === "stop") {
    await close();
    process.disconnect();
  }
});
