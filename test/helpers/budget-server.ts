/**
 * Child process of test/never-reading.test.ts: a ToolDb server on WebSocket
 * and Hyperswarm (a private HyperDHT given as `host:port,…` in argv[2])
 * holding a record of 900 KB (`big`) and a small one (`small`). Reports
 * `{ port }` over IPC, then answers "stats" with its memory, the send
 * budget's queue and its refusals by code, and "stop" by closing.
 */
import { HyperswarmNetwork } from "../../src/entries/hyperswarm.js";
import { ToolDb, WebSocketNetwork } from "../../src/index.js";
import type { NetworkAdapterConstructor } from "../../src/network/network-adapter.js";

export interface BudgetServerStats {
  type: "stats";
  rss: number;
  heap: number;
  queued: number;
  /** The send budget's highest reading of all links' queues together. */
  peakQueued: number;
  links: number;
  refusals: Record<string, number>;
  /** Addresses whose bans were reported. */
  bannedHosts: string[];
}

/** The server: only when forked with an IPC channel (the test runner also loads every file under dist/test). */
async function main(send: (m: unknown) => void): Promise<void> {
  const bootstrap = (process.argv[2] ?? "").split(",").filter(Boolean);
  const networkAdapter: NetworkAdapterConstructor | NetworkAdapterConstructor[] =
    bootstrap.length > 0 ? [WebSocketNetwork, HyperswarmNetwork.with({ bootstrap, dhtHost: "127.0.0.1" })] : WebSocketNetwork;
  const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: process.argv[3] ?? "never-reading", networkAdapter });
  await server.ready;
  // Announced on the HyperDHT before the port is reported, so that Hyperswarm peers find it at once.
  const network = server.network as { transport?: (a: typeof HyperswarmNetwork) => HyperswarmNetwork | undefined };
  await network.transport?.(HyperswarmNetwork)?.joined;
  await server.putData("big", "x".repeat(900 * 1024));
  await server.putData("small", "hello");

  const refusals: Record<string, number> = {};
  const bannedHosts = new Set<string>();
  server.on("refused", (e) => {
    refusals[e.code] = (refusals[e.code] ?? 0) + 1;
    if (e.code === "BANNED" && e.host && /IP/.test(e.reason)) bannedHosts.add(e.host);
  });
  const sends = server.network.guard.sends!;
  send({ type: "port", port: server.network.port });

  process.on("message", async (msg: { type: string }) => {
    if (msg.type === "stats") {
      const { rss, heapUsed } = process.memoryUsage();
      const stats: BudgetServerStats = { type: "stats", rss, heap: heapUsed, queued: sends.queued, peakQueued: sends.peak, links: server.network.peers.length, refusals: { ...refusals }, bannedHosts: [...bannedHosts] };
      send(stats);
    } else if (msg.type === "stop") {
      await server.close();
      process.disconnect();
    }
  });
}

if (process.send) await main((m) => process.send!(m));
