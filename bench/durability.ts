/**
 * What durable confirmations cost: LevelDB writes with and without fsync
 * (raw classic-level, same run), LevelStore's group-committed flush, and an
 * acknowledged put end to end (client -> LevelStore server -> putAck) beside
 * a plain put reaching the same server.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { ToolDb } from "../src/index.js";
import { LevelStore } from "../src/stores/index.js";
import { fmt, percentile } from "./stats.js";

const IN_FLIGHT = 64;

/** Runs `op(i)` for i < count with IN_FLIGHT at a time; resolves ops per second. */
async function rate(count: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

export interface DurabilityFigures {
  rawPut: number;
  rawSyncPut: number;
  storePutFlush: number;
  plainPut: { p50: number; p99: number };
  ackedPut: { p50: number; p99: number };
}

export async function durabilityBenchmark(writes: number, puts: number): Promise<DurabilityFigures> {
  const dir = await mkdtemp(join(tmpdir(), "tooldb-bench-durable-"));
  try {
    const raw = new ClassicLevel<string, string>(join(dir, "raw"), { keyEncoding: "utf8", valueEncoding: "utf8" });
    await raw.open();
    const value = "x".repeat(300);
    const rawPut = await rate(writes, (i) => raw.put(`a${i}`, value));
    const rawSyncPut = await rate(writes, (i) => raw.put(`b${i}`, value, { sync: true }));
    await raw.close();

    const store = new LevelStore(undefined, join(dir, "store"));
    await store.ready;
    // What a server does per confirmed put: the write, then a flush shared with the writes around it.
    const storePutFlush = await rate(writes, (i) => store.put(`c${i}`, value).then(() => store.flush()));
    await store.close();

    const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: "bench-durable", storageAdapter: LevelStore, storageName: join(dir, "server") });
    await server.ready;
    const port = (server.network as unknown as { port: number }).port;
    const client = new ToolDb({ topic: "bench-durable", peers: [{ host: "127.0.0.1", port }] });
    await client.ready;
    await new Promise((resolve) => client.once("connect", () => resolve(undefined)));
    const plain: number[] = [];
    const acked: number[] = [];
    for (let i = 0; i < puts; i++) {
      // Plain: until the server stored it (its put event). Acknowledged: until the putAck after the fsync.
      let t0 = performance.now();
      const stored = new Promise((resolve) => server.once("put", resolve));
      await client.putData(`plain-${i}`, i);
      await stored;
      plain.push(performance.now() - t0);
      t0 = performance.now();
      await client.putData(`acked-${i}`, i, false, { ack: 1 });
      acked.push(performance.now() - t0);
    }
    await client.close();
    await server.close();
    const stats = (xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
    };
    return { rawPut, rawSyncPut, storePutFlush, plainPut: stats(plain), ackedPut: stats(acked) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function printDurabilityFigures(f: DurabilityFigures, print: (line: string) => void): void {
  print(`raw classic-level put, ${IN_FLIGHT} in flight: ${fmt(f.rawPut, 0)} /s; with sync: true on each: ${fmt(f.rawSyncPut, 0)} /s (${fmt(f.rawSyncPut / f.rawPut, 3)} ×)`);
  print(`LevelStore put + flush (group-committed fsync, what a server does per confirmed put): ${fmt(f.storePutFlush, 0)} /s (${fmt(f.storePutFlush / f.rawPut, 3)} × raw put, ${fmt(f.storePutFlush / f.rawSyncPut, 1)} × a sync put each)`);
  print(`client -> LevelStore server, one at a time: plain put until stored p50 ${fmt(f.plainPut.p50, 2)} ms, p99 ${fmt(f.plainPut.p99, 2)} ms; acknowledged put (ack: 1, after fsync) p50 ${fmt(f.ackedPut.p50, 2)} ms, p99 ${fmt(f.ackedPut.p99, 2)} ms (${fmt(f.ackedPut.p50 / f.plainPut.p50, 2)} × at p50)`);
}
