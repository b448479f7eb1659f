import { fork } from "node:child_process";
import { ask } from "./child.js";
import { presign } from "./presign.js";
import { fileURLToPath } from "node:url";
import { EcdsaUser, ToolDb } from "../src/index.js";
import { RelayLoop } from "./relay-loop.js";
import { percentile } from "./stats.js";

const KEYS = 100;

export interface RelayFigures {
  puts: number;
  seconds: number;
  putsPerSecond: number;
  signPerSecond: number;
  p50: number;
  p99: number;
  rssAt20k: number;
  rssAt200k: number;
  heapAt20k: number;
  heapAt200k: number;
  /** CPU time of the server process (all threads) per relayed put after the first 20,000 (µs). */
  serverCpuPerPut: number;
  /** The same for this process, which runs the writer and the subscriber (it verifies every put again). */
  clientsCpuPerPut: number;
  /** The server's signature checks after the first 20,000 puts: by its threads, by its main thread helping them, and the messages that carried the threads' share. */
  serverChecks: { threads: number; helped: number; batches: number };
}

interface ServerReply {
  type: string;
  port?: number;
  rss?: number;
  heap?: number;
  cpu?: number;
  verify?: { verified: number; helped: number; batches: number };
}

/**
 * One writer -> one server (a child process) -> one subscriber, on
 * loopback. Records are signed before the clock starts; what is timed is
 * the relay: the server verifies and relays, the subscriber verifies.
 */
export async function relayBenchmark(total = 200_000, window = 2000): Promise<RelayFigures> {
  const child = fork(fileURLToPath(new URL("./relay-server.js", import.meta.url)), { execArgv: ["--expose-gc", ...(process.env.BENCH_CHILD_ARGS ?? "").split(" ").filter(Boolean)], stdio: "inherit" });
  const { port } = await new Promise<ServerReply>((resolve) => child.once("message", (m: ServerReply) => resolve(m)));
  const peers = [{ host: "127.0.0.1", port: port! }];
  const writer = new ToolDb({ topic: "bench", peers });
  const subscriber = new ToolDb({ topic: "bench", peers });
  await Promise.all([writer.ready, subscriber.ready]);
  await Promise.all([writer, subscriber].map((db) => (db.isConnected ? undefined : new Promise((r) => db.once("connect", () => r(undefined))))));

  const author = new EcdsaUser();
  await author.ready;
  const now = Date.now() - 10 * 60_000;
  const signStart = performance.now();
  const records = await presign(author, total + 2000, now, "bench-", KEYS);
  const signPerSecond = records.length / ((performance.now() - signStart) / 1000);

  const loop = await RelayLoop.start(writer, subscriber, records, "bench-", KEYS, "b");
  // Unloaded latency: one put at a time.
  const base = 2000;
  const unloaded = await loop.oneAtATime(base);
  let rssAt20k = 0;
  let heapAt20k = 0;
  let cpuAt20k = 0;
  let checksAt20k: ServerReply["verify"];
  let clientsCpuAt20k: NodeJS.CpuUsage | undefined;
  let busy = 0;
  // Two phases, each ending quiescent (all delivered) so RSS is compared like with like.
  const mid = Math.min(20_000, total);
  for (const [from, to] of [[0, mid], [mid, total]] as const) {
    busy += await loop.windowed(base + from, base + to, window);
    if (rssAt20k === 0) {
      const r = await ask<ServerReply>(child, "rss");
      rssAt20k = r.rss!;
      heapAt20k = r.heap!;
      cpuAt20k = r.cpu!;
      checksAt20k = r.verify;
      clientsCpuAt20k = process.cpuUsage();
    }
  }
  const seconds = busy / 1000;
  const clientsCpu = process.cpuUsage(clientsCpuAt20k);
  const end = await ask<ServerReply>(child, "rss");
  await Promise.all([writer.close(), subscriber.close()]);
  child.send({ type: "stop" });
  await new Promise((r) => child.once("exit", r));
  return {
    puts: total,
    seconds,
    putsPerSecond: total / seconds,
    signPerSecond,
    p50: percentile(unloaded, 50),
    p99: percentile(unloaded, 99),
    rssAt20k,
    rssAt200k: end.rss!,
    heapAt20k,
    heapAt200k: end.heap!,
    serverCpuPerPut: total > mid ? (end.cpu! - cpuAt20k) / (total - mid) : NaN,
    clientsCpuPerPut: total > mid ? (clientsCpu.user + clientsCpu.system) / (total - mid) : NaN,
    serverChecks: checksBetween(checksAt20k, end.verify),
  };
}

function checksBetween(from: ServerReply["verify"], to: ServerReply["verify"]): RelayFigures["serverChecks"] {
  if (!from || !to) return { threads: 0, helped: 0, batches: 0 };
  const helped = to.helped - from.helped;
  return { threads: to.verified - from.verified - helped, helped, batches: to.batches - from.batches };
}
