/**
 * Rebuild of the reconciliation index (src/node/sync/sync-index.ts) after an
 * unclean close, at N records on LevelDB, beside the raw engine's floor in
 * the same run: a classic-level full scan of the same records store with a
 * batch write of every record it read into a fresh database (what any
 * rebuild must at least do: read everything, write about as much).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { EcdsaUser, LevelStore, signRecord } from "../src/index.js";
import { createLogger } from "../src/base/logger.js";
import { SyncIndex } from "../src/node/sync/sync-index.js";
import { fmt, mib } from "./stats.js";

export interface RebuildFigures {
  records: number;
  recordBytes: number;
  /** An index that never existed. */
  rebuildSeconds: number;
  rebuildCpuSeconds: number;
  /** After an unclean close: the stale index is dropped first. */
  uncleanSeconds: number;
  uncleanCpuSeconds: number;
  /** Peak RSS of this process after the rebuild (it includes the seeding before). */
  rssAfter: number;
  rawSeconds: number;
  rawCpuSeconds: number;
}

const BATCH = 1024;

function level(dir: string): ClassicLevel<string, string> {
  return new ClassicLevel<string, string>(dir, { keyEncoding: "utf8", valueEncoding: "utf8" });
}

/** Signs `count` records and writes them straight to a LevelDB records store (no index), batch by batch; returns their bytes. */
async function seed(dir: string, count: number, progress: (line: string) => void): Promise<number> {
  const user = new EcdsaUser();
  await user.ready;
  await user.anonUser();
  const db = level(dir);
  await db.open();
  let bytes = 0;
  const t0 = Date.now() - count - 60_000;
  for (let i = 0; i < count; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => signRecord(user, `r/${i + j}`, { n: i + j, payload: "x".repeat(64) }, t0 + i + j, 0, false)),
    );
    await db.batch(batch.map((r) => ({ type: "put" as const, key: r.k, value: JSON.stringify(r) })));
    for (const r of batch) bytes += JSON.stringify(r).length;
    if ((i / BATCH) % 100 === 99) progress(`signed and stored ${(i + BATCH).toLocaleString()} of ${count.toLocaleString()} records`);
  }
  await db.close();
  return bytes;
}

function timed<T>(task: () => Promise<T>): Promise<{ result: T; seconds: number; cpuSeconds: number }> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  return task().then((result) => {
    const used = process.cpuUsage(cpu);
    return { result, seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  });
}

/** The floor: scan every record with a classic-level iterator and batch-write it into a fresh database. */
async function rawScanAndWrite(from: string, to: string): Promise<number> {
  const source = level(from);
  const target = level(to);
  await Promise.all([source.open(), target.open()]);
  let n = 0;
  let batch: { type: "put"; key: string; value: string }[] = [];
  for await (const [key, value] of source.iterator()) {
    batch.push({ type: "put", key, value });
    n++;
    if (batch.length >= BATCH) {
      await target.batch(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await target.batch(batch);
  await Promise.all([source.close(), target.close()]);
  return n;
}

/**
 * Opens the index over the records: it rebuilds, since it was never built
 * or not closed cleanly. `crash` leaves it unclean afterwards (its store
 * closed without the clean mark), so the next open drops every stale entry first.
 */
async function rebuildIndex(records: string, index: string, crash: boolean): Promise<number> {
  const store = new LevelStore(undefined, records);
  const sync = new SyncIndex(new LevelStore(undefined, index), store, createLogger("bench:rebuild"));
  await sync.open();
  const size = sync.size;
  await (crash ? sync.store.close() : sync.close());
  await store.close();
  return size;
}

export async function rebuildBenchmark(count: number, progress: (line: string) => void): Promise<RebuildFigures> {
  const dir = await mkdtemp(join(tmpdir(), "tooldb-bench-rebuild-"));
  try {
    const recordBytes = await seed(join(dir, "records"), count, progress);
    progress("raw classic-level scan + batch write");
    const raw = await timed(() => rawScanAndWrite(join(dir, "records"), join(dir, "raw-copy")));
    progress("index rebuild");
    const rebuilt = await timed(() => rebuildIndex(join(dir, "records"), join(dir, "records.sync"), true));
    progress("index rebuild after an unclean close");
    const unclean = await timed(() => rebuildIndex(join(dir, "records"), join(dir, "records.sync"), false));
    if (raw.result !== count || rebuilt.result !== count || unclean.result !== count) throw new Error(`scanned ${raw.result}, indexed ${rebuilt.result} and ${unclean.result} of ${count} records`);
    return {
      records: count,
      recordBytes,
      rebuildSeconds: rebuilt.seconds,
      rebuildCpuSeconds: rebuilt.cpuSeconds,
      uncleanSeconds: unclean.seconds,
      uncleanCpuSeconds: unclean.cpuSeconds,
      rssAfter: process.memoryUsage().rss,
      rawSeconds: raw.seconds,
      rawCpuSeconds: raw.cpuSeconds,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function printRebuildFigures(f: RebuildFigures, print: (line: string) => void): void {
  print(`records: ${f.records.toLocaleString()} (${mib(f.recordBytes)} of record JSON)`);
  print(`raw classic-level full scan + batch write of the same records: ${fmt(f.rawSeconds, 2)} s, CPU ${fmt(f.rawCpuSeconds, 2)} s`);
  const line = (what: string, seconds: number, cpu: number) =>
    `${what}: ${fmt(seconds, 2)} s (${fmt(f.records / seconds, 0)} records/s), CPU ${fmt(cpu, 2)} s; ratio to raw ${fmt(seconds / f.rawSeconds, 2)} (wall), ${fmt(cpu / f.rawCpuSeconds, 2)} (CPU)`;
  print(line("index rebuild, no index yet", f.rebuildSeconds, f.rebuildCpuSeconds));
  print(line("index rebuild after an unclean close (stale index dropped first)", f.uncleanSeconds, f.uncleanCpuSeconds));
  print(`RSS after the rebuild: ${mib(f.rssAfter)}`);
}
