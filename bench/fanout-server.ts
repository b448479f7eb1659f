/**
 * Child process for the fan-out and connection benchmarks: one ToolDb server
 * (limits opened for many loopback clients), or a plain `ws` server with
 * the options WebSocketNetwork gives ws: `raw` only holds connections,
 * `raw-verify` also does a handshake's work on each (checks the signed
 * ping, answers with a pong carrying this server's signed record) and keeps
 * nothing of it. Answers memory requests (RSS and JS heap in use, after
 * full GCs).
 */
import { WebSocketServer } from "ws";
import { EcdsaUser, ToolDb, checkPeerRecord, clientIdOf, signPeerRecord } from "../src/index.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../src/network/index.js";

const TOPIC = "bench-fanout";
const mode = process.argv[2];
let port: number;
let close: () => Promise<void>;
if (mode === "raw" || mode === "raw-verify") {
  // The rest are ws's defaults on both: no permessage-deflate, client tracking on.
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: DEFAULT_MAX_MESSAGE_BYTES });
  await new Promise((r) => wss.once("listening", r));
  port = (wss.address() as { port: number }).port;
  close = () => new Promise((r) => wss.close(() => r(undefined)));
  if (mode === "raw-verify") {
    const user = new EcdsaUser();
    await user.ready;
    const record = await signPeerRecord(user, TOPIC, "127.0.0.1", port, Date.now());
    const clientId = clientIdOf(user.getAddress()!);
    wss.on("connection", (ws) => {
      ws.once("message", async (data) => {
        const ping = JSON.parse(String(data)) as { id: string; peer: Parameters<typeof checkPeerRecord>[0] };
        const problem = await checkPeerRecord(ping.peer, TOPIC, (m) => user.verifySignature(m), Date.now());
        if (problem) ws.close(4002, problem);
        else ws.send(JSON.stringify({ type: "pong", id: ping.id, to: [], clientId, isServer: true, servers: [record], peer: record }));
      });
    });
  }
} else {
  const many = 100_000;
  const server = new ToolDb({
    server: true,
    host: "127.0.0.1",
    port: 0,
    topic: TOPIC,
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
