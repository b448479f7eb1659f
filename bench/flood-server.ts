/**
 * Child process of the flood benchmark: one ToolDb server with the default
 * limits, holding KEYS keys. Reports its port, then answers "stats" (RSS
 * after a GC, refusals by code, link counts) over IPC.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { ToolDb } from "../src/index.js";

const keys = Number(process.argv[2] ?? 5000);
const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "flood" });
await server.ready;
for (let i = 0; i < keys; i++) await server.putData(`k${i}`, { i, payload: "x".repeat(64) });
// What the never-reading peers ask for again and again.
await server.putData("big", "x".repeat(900 * 1024));
const refusals: Record<string, number> = {};
server.on("refused", (e) => void (refusals[e.code] = (refusals[e.code] ?? 0) + 1));
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
process.send!({ type: "port", port: (server.network as unknown as { port: number }).port });
process.on("message", async (msg: { type: string }) => {
  if (msg.type === "stats") {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
    gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    const guard = server.network.guard;
    const lagMs = { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 };
    lag.reset();
    process.send!({ type: "stats", lagMs, intake: { inFlight: guard.intake?.inFlight, queued: guard.intake?.queuedFrames }, rss, heap: heapUsed, refusals: { ...refusals }, gate: guard.gate.counts, bans: guard.bans.size, subscriptions: server.remoteSubscriptions.total, queued: guard.sends?.queued ?? 0 });
  } else if (msg.type === "stop") {
    await server.close();
    process.disconnect();
  }
});
