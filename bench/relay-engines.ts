/**
 * The engines a relayed put cannot do without, alone, on the relay bench's
 * own presigned records: what any relay built on ws, node:crypto and
 * classic-level spends on this machine before any code of ours runs. A put
 * crosses two WebSocket hops (writer -> server -> subscriber), each ending in
 * JSON.parse and ToolDb's hash check; it is verified twice and written once.
 * Their CPU a put, over the machine's cores, is the best relay rate these
 * engines allow here (bench/run.ts prints it beside the verify rate).
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { WebSocket, WebSocketServer } from "ws";
import type { ToolDbRecord } from "../src/index.js";
import { boundHashPrefix } from "../src/records/record.js";
import { ThreadVerifier } from "./verify-rate.js";

/** CPU µs a put of each engine step (all threads of this process). */
export interface RelayEngineCpu {
  /** One hop: the put frame stringified and sent, received, parsed and its hash checked. */
  hop: number;
  /** One signature check (one thread a core, synchronous node:crypto). */
  verify: number;
  /** The server's write of the record (classic-level batches of 1,024). */
  write: number;
}

/** Put frames a hop has in flight, as the relay bench's writer keeps them (bench/relay-loop.ts). */
const WINDOW = 2000;
const WRITE_BATCH = 1024;

function cpuMicros(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

/** Sends every record as a put frame over one loopback WebSocket, the receiver parsing and hash-checking each; resolves the CPU µs a put. */
async function hop(records: ToolDbRecord[]): Promise<number> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(server, "listening");
  let received = 0;
  let wake: (() => void) | undefined;
  server.on("connection", (ws) =>
    ws.on("message", (data) => {
      const m = JSON.parse(String(data)) as { data: ToolDbRecord };
      const r = m.data;
      if (createHash("sha256").update(boundHashPrefix(r.k, r.v, r.a, r.t) + r.n).digest("hex") !== r.h) throw new Error("relay engines: a hash does not match");
      received++;
      wake?.();
    }),
  );
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
  await once(ws, "open");
  // The frames a turn sends leave in one write, as the node's transports do (network/turn-cork.ts).
  const socket = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  const cpu = process.cpuUsage();
  for (let n = 0; n < records.length; ) {
    socket.cork();
    for (; n < records.length && n - received < WINDOW; n++) ws.send(JSON.stringify({ type: "put", id: `e${n}`, to: [], data: records[n] }));
    socket.uncork();
    if (n - received >= WINDOW) await new Promise<void>((resolve) => (wake = resolve));
  }
  while (received < records.length) await new Promise<void>((resolve) => (wake = resolve));
  const micros = cpuMicros(cpu);
  ws.close();
  server.close();
  return micros / records.length;
}

/** Measures each engine step on `records` (see the file's comment). */
export async function measureRelayEngines(records: ToolDbRecord[]): Promise<RelayEngineCpu> {
  const hopMicros = await hop(records);
  const threads = new ThreadVerifier();
  await threads.verify(records.slice(0, 64));
  let cpu = process.cpuUsage();
  if ((await threads.verify(records)) !== 0) throw new Error("relay engines: a signature does not verify");
  const verifyMicros = cpuMicros(cpu) / records.length;
  await threads.close();
  const dir = join(tmpdir(), `tooldb-bench-relay-engines-${process.pid}`);
  const db = new ClassicLevel<string, string>(dir, { keyEncoding: "utf8", valueEncoding: "utf8" });
  await db.open();
  const raws = records.map((r) => JSON.stringify(r));
  cpu = process.cpuUsage();
  for (let i = 0; i < records.length; i += WRITE_BATCH) {
    await db.batch(records.slice(i, i + WRITE_BATCH).map((r, j) => ({ type: "put" as const, key: r.k, value: raws[i + j]! })));
  }
  const writeMicros = cpuMicros(cpu) / records.length;
  await db.close();
  await rm(dir, { recursive: true, force: true });
  return { hop: hopMicros, verify: verifyMicros, write: writeMicros };
}
