/**
 * `npm run bench -- reads`: what a fresh read costs. A client holding a key
 * reads it while linked to a server (it asks the server, the answer is
 * merged), beside the same read with no server linked (the local copy, what
 * every read of a local key cost before) and beside tool-db 2.6.6 reading a
 * key it holds (local, at once) and a key only its server holds (one round
 * trip), all in this process on loopback, one read at a time.
 */
import t from "tool-db";
import u from "@tool-db/ecdsa-user";
import { ToolDb } from "../src/index.js";
import { MemoryToolDbStore, ToolDbWsAdapter } from "../test/interop/tooldb-ws-adapter.js";
import { fmt, percentile } from "./stats.js";

export interface ReadFigures {
  reads: number;
  fresh: { p50: number; p99: number };
  local: { p50: number; p99: number };
  legacyLocal: { p50: number; p99: number };
  legacyRemote: { p50: number; p99: number };
}

async function timed(reads: number, read: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < Math.min(200, reads); i++) await read(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < reads; i++) {
    const start = performance.now();
    await read();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

async function legacyNode(topic: string, server: boolean, peers: Array<{ host: string; port: number }>) {
  const db = new t.ToolDb({ topic, server, host: "127.0.0.1", port: 0, peers, networkAdapter: ToolDbWsAdapter, storageAdapter: MemoryToolDbStore, userAdapter: u.default, storageName: `bench-reads-${server}-${process.pid}-${peers.length}-${Math.random()}`, pow: 0 });
  await db.ready;
  const net = db.network as unknown as ToolDbWsAdapter;
  await net.ready;
  while (peers.length > 0 && !db.isConnected) await sleep(5);
  return { db, net, store: db.store as unknown as MemoryToolDbStore };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function readsBenchmark(reads: number): Promise<ReadFigures> {
  const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "bench-reads" });
  await server.ready;
  const port = (server.network as unknown as { port: number }).port;
  const client = new ToolDb({ topic: "bench-reads", peers: [{ host: "127.0.0.1", port }] });
  const offline = new ToolDb({ topic: "bench-reads" });
  await Promise.all([client.ready, offline.ready]);
  await new Promise<void>((resolve) => (client.isConnected ? resolve() : client.once("connect", () => resolve())));
  await client.putData("k", { v: 1 });
  await offline.putData("k", { v: 1 });
  while (!(await server.records.get("k"))) await sleep(5);

  // 2.6.6's putData only sends, and a 2.6.6 node stores every reply it handles: a writer fills the
  // server, then a reader that has never seen the keys joins; each remote read takes a new key.
  const topic = `bench-reads-${process.pid}`;
  const legacyServer = await legacyNode(topic, true, []);
  const peers = [{ host: "127.0.0.1", port: legacyServer.net.port! }];
  const legacy = [legacyServer];
  try {
    const writer = await legacyNode(topic, false, peers);
    legacy.push(writer);
    const remoteKeys = reads + Math.min(200, reads);
    for (let i = 0; i < remoteKeys; i++) await writer.db.putData(`remote-${i}`, i);
    await writer.db.putData("local", 1);
    while (!(await legacyServer.store.get("local").catch(() => undefined))) await sleep(5);
    const reader = await legacyNode(topic, false, peers);
    legacy.push(reader);
    let next = 0;
    const fresh = await timed(reads, () => client.getData("k"));
    const local = await timed(reads, () => offline.getData("k"));
    // Its first read stores the reply: from then on the key is held locally.
    const legacyLocal = await timed(reads, () => reader.db.getData("local"));
    const legacyRemote = await timed(reads, () => reader.db.getData(`remote-${next++}`));
    return { reads, fresh, local, legacyLocal, legacyRemote };
  } finally {
    for (const node of legacy.reverse()) {
      await node.net.close();
      await node.db.close();
    }
    await Promise.all([client.close(), offline.close(), server.close()]);
  }
}

export function printReadFigures(r: ReadFigures, out: (line: string) => void): void {
  const row = (name: string, f: { p50: number; p99: number }) => out(`${name}: p50 ${fmt(f.p50, 3)} ms, p99 ${fmt(f.p99, 3)} ms`);
  out(`${r.reads.toLocaleString()} reads of one small key, one at a time`);
  row("fresh read (key held locally, server linked: asks it, merges)", r.fresh);
  row("local copy (same store, no server linked)", r.local);
  row("tool-db 2.6.6, key held locally (answers from the store)", r.legacyLocal);
  row("tool-db 2.6.6, key only on its server (one round trip)", r.legacyRemote);
  out(`ratio fresh / local: ${fmt(r.fresh.p50 / r.local.p50, 1)} (p50); fresh / 2.6.6 round trip: ${fmt(r.fresh.p50 / r.legacyRemote.p50, 2)} (p50)`);
}
