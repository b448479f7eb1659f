/**
 * Child process for the ingest benchmark: one server on 127.0.0.1 (any free
 * port), either a tooldb-dht ToolDb (`ours`) or a tool-db 2.6.6 node with the
 * test WebSocket adapter and an in-memory store (`legacy`), chosen by argv[2];
 * argv[3] is the topic. bench/ingest.ts imports only types from here.
 *
 * It counts records verified and stored (ours: ToolDb "put"; 2.6.6: its
 * "verified" event, emitted by handlePut after the signature check; its store
 * writes are counted too), reports progress over IPC (every ACK_EVERY puts,
 * and a few ms after the last one), and answers:
 * - `mem`: RSS and heap after two GCs (run with --expose-gc), CPU time so far, plus the size
 *   of the dedup structures;
 * - `check`: whether the store holds, for every bench key, the latest record
 *   sent for it (proves the puts were stored, not only verified);
 * - `stop`: closes every socket and the server, then leaves the IPC channel.
 */
import t from "tool-db";
import u from "@tool-db/ecdsa-user";
import { TRUSTED_WRITER } from "./presign.js";
import { ToolDb, type ToolDbRecord } from "../src/index.js";
import { MemoryToolDbStore, ToolDbWsAdapter, type LegacyToolDb } from "../test/interop/tooldb-ws-adapter.js";

export type IngestImpl = "ours" | "legacy";

const ACK_EVERY = 250;
const ACK_DELAY_MS = 3;

export type ServerRequest =
  | { type: "mem" }
  | { type: "check"; keys: number; sent: number; prefix: string }
  | { type: "stop" };

export type ServerReply =
  | { type: "port"; port: number }
  | { type: "progress"; count: number }
  | {
      type: "mem";
      rss: number;
      heap: number;
      /** CPU time of this process so far, all threads (µs). */
      cpu: number;
      count: number;
      stored: number;
      /** 2.6.6: total entries of processedIds (all types); ours: entries in the bounded id set. */
      dedupIds: number;
      /** 2.6.6: total entries of processedOutHashes (all peers); ours: 0 (no such structure). */
      dedupOutHashes: number;
    }
  | { type: "check"; ok: boolean; checked: number; problems: string[] }
  | { type: "error"; message: string };

interface Server {
  port: number;
  /** Verified puts so far. */
  count(): number;
  /** Store writes so far. */
  stored(): number;
  dedup(): { ids: number; outHashes: number };
  read(key: string): Promise<ToolDbRecord | undefined>;
  close(): Promise<void>;
  onPut(cb: () => void): void;
}

async function startOurs(topic: string): Promise<Server> {
  const db = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic, maxMessageBytes: 1 << 20, limits: TRUSTED_WRITER });
  await db.ready;
  let count = 0;
  const listeners: Array<() => void> = [];
  // "put" is emitted once the record is verified and merged into the store.
  db.on("put", () => {
    count++;
    for (const l of listeners) l();
  });
  const port = (db.network as unknown as { port: number }).port;
  return {
    port,
    count: () => count,
    stored: () => count,
    dedup: () => ({ ids: db.processed.size, outHashes: 0 }),
    read: (key) => db.records.get(key),
    close: () => db.close(),
    onPut: (cb) => listeners.push(cb),
  };
}

async function startLegacy(topic: string): Promise<Server> {
  const db = new t.ToolDb({
    topic,
    server: true,
    host: "127.0.0.1",
    port: 0,
    peers: [],
    networkAdapter: ToolDbWsAdapter,
    storageAdapter: MemoryToolDbStore,
    userAdapter: u.default,
    storageName: `bench-ingest-${process.pid}`,
    pow: 0,
    maxRetries: 1,
    wait: 50,
  }) as LegacyToolDb;
  const net = db.network as unknown as ToolDbWsAdapter;
  const store = db.store as unknown as MemoryToolDbStore;
  await db.ready;
  await net.ready;
  let count = 0;
  let stored = 0;
  const listeners: Array<() => void> = [];
  // handlePut emits "put", "data" and "verified" once toolDbVerificationWrapper
  // said Verified; the store write follows a store.get (skipped when the key
  // already holds a newer record).
  db.on("verified", () => {
    count++;
    for (const l of listeners) l();
  });
  store.events.on("put", () => stored++);
  const internals = db as unknown as { processedIds: Record<string, string[]>; processedOutHashes: Record<string, string[]> };
  const total = (o: Record<string, string[]>) => Object.values(o).reduce((n, a) => n + a.length, 0);
  return {
    port: net.port!,
    count: () => count,
    stored: () => stored,
    dedup: () => ({ ids: total(internals.processedIds), outHashes: total(internals.processedOutHashes) }),
    read: async (key) => {
      const raw = store.peek(key);
      return raw === undefined ? undefined : (JSON.parse(raw) as ToolDbRecord);
    },
    // tool-db has no close() for its network; the adapter has one. db.close() closes the stores.
    close: async () => {
      await net.close();
      await db.close();
    },
    onPut: (cb) => listeners.push(cb),
  };
}

const impl = process.argv[2];
const topic = process.argv[3] ?? "bench-ingest";
if (impl !== "ours" && impl !== "legacy") throw new Error(`usage: ingest-server.js ours|legacy (got ${impl})`);
const send = (m: ServerReply) => process.send!(m);
process.on("unhandledRejection", (err) => {
  send({ type: "error", message: `unhandled rejection in the ${impl} server: ${String(err)}` });
});

const server = impl === "ours" ? await startOurs(topic) : await startLegacy(topic);

// Progress every ACK_EVERY puts, and once the puts stop for ACK_DELAY_MS (the tail of a batch).
// Not on a timer while puts flow: an IPC message every few ms cost the server ~4 % of its main thread.
let acked = 0;
let lastPut = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
const ack = () => {
  if (timer) clearTimeout(timer);
  timer = undefined;
  acked = server.count();
  send({ type: "progress", count: acked });
};
const ackWhenIdle = () => {
  const quiet = performance.now() - lastPut;
  timer = quiet >= ACK_DELAY_MS ? undefined : setTimeout(ackWhenIdle, ACK_DELAY_MS - quiet);
  if (!timer && server.count() > acked) ack();
};
server.onPut(() => {
  lastPut = performance.now();
  if (server.count() - acked >= ACK_EVERY) ack();
  else timer ??= setTimeout(ackWhenIdle, ACK_DELAY_MS);
});

const gc = (globalThis as { gc?: () => void }).gc;

process.on("message", async (msg: ServerRequest) => {
  if (msg.type === "mem") {
    if (!gc) return send({ type: "error", message: "the server needs --expose-gc" });
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const m = process.memoryUsage();
    const d = server.dedup();
    const cpu = process.cpuUsage();
    send({ type: "mem", rss: m.rss, heap: m.heapUsed, cpu: cpu.user + cpu.system, count: server.count(), stored: server.stored(), dedupIds: d.ids, dedupOutHashes: d.outHashes });
  } else if (msg.type === "check") {
    // Record n went to key `${prefix}${n % keys}` with t increasing in n: the
    // store must hold, per key, the highest n sent for it.
    const problems: string[] = [];
    let checked = 0;
    for (let k = 0; k < Math.min(msg.keys, msg.sent); k++) {
      const expected = k + Math.floor((msg.sent - 1 - k) / msg.keys) * msg.keys;
      const rec = await server.read(`${msg.prefix}${k}`);
      const n = (rec?.v as { n?: number } | undefined)?.n;
      if (n !== expected) problems.push(`${msg.prefix}${k}: holds n=${n}, expected ${expected}`);
      checked++;
    }
    send({ type: "check", ok: problems.length === 0, checked, problems: problems.slice(0, 5) });
  } else if (msg.type === "stop") {
    if (timer) clearTimeout(timer);
    await server.close();
    process.disconnect();
  }
});

send({ type: "port", port: server.port });
