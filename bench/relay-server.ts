/**
 * Child process for the relay benchmark: one ToolDb server on loopback.
 * Reports its port, then answers RSS requests over IPC (after a GC), with its CPU time so far.
 */
import { TRUSTED_WRITER } from "./presign.js";
import { ToolDb } from "../src/index.js";
import { verifyPoolStats } from "../src/crypto/ecdsa.js";

const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "bench", maxMessageBytes: 1 << 20, limits: TRUSTED_WRITER });
await server.ready;
let relayed = 0;
server.on("put", () => relayed++);
process.send!({ type: "port", port: (server.network as unknown as { port: number }).port });
process.on("message", async (msg: { type: string }) => {
  if (msg.type === "rss") {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 50));
    (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    process.send!({ type: "rss", rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, cpu: cpu.user + cpu.system, relayed, verify: verifyPoolStats() });
  } else if (msg.type === "stop") {
    await server.close();
    process.disconnect();
  }
});
