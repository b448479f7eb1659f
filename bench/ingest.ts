/**
 * Server ingest, tooldb-dht vs the published tool-db 2.6.6, in the same run
 * on loopback: one writer in this process sends pre-signed put messages to a
 * server in a child process (bench/ingest-server.ts), which counts the
 * records it verified and stored and acks its progress over IPC. At most
 * `window` puts are in flight, so neither side buffers without bound.
 *
 * Records are key-bound (the hash covers the key), signed with `signRecord`
 * before any clock starts, pow 0. tool-db 2.6.6 at pow 0 only checks the
 * signature over `h`, so it accepts them; each run ends with a check that
 * the server's store holds the latest record of every bench key.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { EcdsaUser, ToolDb, type ToolDbRecord } from "../src/index.js";
import { presign } from "./presign.js";
import type { IngestImpl, ServerReply, ServerRequest } from "./ingest-server.js";
import { fmt, mib } from "./stats.js";

/** Keys written in turn (t increases with n), so neither store grows with the number of puts. */
const KEYS = 100;
const KEY_PREFIX = "ingest-";
const TOPIC = "bench-ingest";
/** First memory sample, in puts stored by the server. */
const MEM_POINT = 20_000;
/** No progress for this long = the server dropped puts (refused, crashed): fail instead of hanging. */
const STALL_MS = 15_000;

export interface ImplIngestFigures {
  impl: IngestImpl;
  name: string;
  /** Untimed warm-up puts at the start. */
  warmup: number;
  /** Timed puts (warm-up excluded) and the time they took. */
  timedPuts: number;
  seconds: number;
  /** Verified (and stored) puts per second over the timed puts. */
  putsPerSecond: number;
  /** Rate from the end of the warm-up to MEM_POINT, and from MEM_POINT to `total`. */
  earlyPerSecond: number;
  latePerSecond: number;
  /** Server memory after a GC at quiescent points: after MEM_POINT and after `total` puts. */
  rssAtPoint: number;
  heapAtPoint: number;
  rssAtTotal: number;
  heapAtTotal: number;
  /** CPU time of the server process (all threads: main, signature checks, GC) per put from MEM_POINT to `total` (µs). */
  cpuPerPut: number;
  /** CPU time of the writer (this process, all threads) per put over the same puts (µs): it shares the machine with the server. */
  writerCpuPerPut: number;
  /** 2.6.6: processedIds entries (all types); ours: message ids in the bounded dedup set. */
  dedupIdsAtPoint: number;
  dedupIdsAtTotal: number;
  /** 2.6.6: processedOutHashes entries (all peers); ours has none. */
  dedupOutHashesAtPoint: number;
  dedupOutHashesAtTotal: number;
  /** Store writes the server made (2.6.6 skips a write when the key already holds a newer record). */
  storedAtTotal: number;
  /** The store holds the latest record of each of the KEYS keys. */
  storeCheckOk: boolean;
  storeCheckProblems: string[];
}

export interface IngestFigures {
  total: number;
  window: number;
  memPoint: number;
  keys: number;
  signPerSecond: number;
  /** The first run of each (memory, CPU and store figures). */
  ours: ImplIngestFigures;
  legacy: ImplIngestFigures;
  /** Verified puts/s of every run, in the order each server ran (ours first, then 2.6.6 first, and so on). */
  rates: { ours: number[]; legacy: number[] };
  /** Median of ours / median of 2.6.6 */
  throughputRatio: number;
  rssGrowthRatio: number;
  heapGrowthRatio: number;
}

/** Ids like tool-db's own (10 random alphanumerics), unique within the run. */
function messageIds(count: number): string[] {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const seen = new Set<string>();
  const bytes = randomBytes(count * 12);
  let b = 0;
  while (seen.size < count) {
    let id = "";
    for (let i = 0; i < 10; i++) id += alphabet[bytes[b++ % bytes.length]! % alphabet.length];
    seen.add(id);
  }
  return [...seen];
}

async function presignForIngest(count: number): Promise<ToolDbRecord[]> {
  const author = new EcdsaUser();
  await author.ready;
  // t0 + n stays well in the past (2.6.6 refuses t more than 30 s ahead).
  return presign(author, count, Date.now() - 10 * 60_000, KEY_PREFIX, KEYS);
}

/** One child-process server, and waits on its replies that fail rather than hang. */
class ServerChild {
  private progress = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly replies: ServerReply[] = [];
  readonly exited: Promise<number | null>;

  private constructor(readonly impl: IngestImpl, private readonly child: ChildProcess) {
    child.on("message", (m: ServerReply) => {
      if (m.type === "progress") this.progress = m.count;
      else if (m.type === "error") this.failure ??= new Error(m.message);
      else this.replies.push(m);
      this.wake?.();
    });
    child.on("error", (err) => {
      this.failure ??= err;
      this.wake?.();
    });
    this.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        this.failure ??= new Error(`the ${impl} server exited (code ${code})`);
        this.wake?.();
        resolve(code);
      }),
    );
  }

  static start(impl: IngestImpl): ServerChild {
    const script = fileURLToPath(new URL("./ingest-server.js", import.meta.url));
    const execArgv = ["--expose-gc", ...(process.env.BENCH_CHILD_ARGS ?? "").split(" ").filter(Boolean)];
    return new ServerChild(impl, fork(script, [impl, TOPIC], { execArgv, stdio: "inherit" }));
  }

  get count(): number {
    return this.progress;
  }

  /** Resolves on the next report (or throws on failure / stall). */
  private async next(what: string): Promise<void> {
    if (this.failure) throw this.failure;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve, reject) => {
      this.wake = resolve;
      timer = setTimeout(() => reject(new Error(`${this.impl} server: no progress for ${STALL_MS} ms waiting for ${what} (at ${this.progress} puts)`)), STALL_MS);
    }).finally(() => {
      clearTimeout(timer);
      this.wake = undefined;
    });
    if (this.failure) throw this.failure;
  }

  async untilCount(target: number): Promise<void> {
    while (this.progress < target) await this.next(`${target} verified puts`);
  }

  async ask<T extends ServerReply["type"]>(req: ServerRequest & { type: T }): Promise<Extract<ServerReply, { type: T }>> {
    this.child.send(req);
    for (;;) {
      const i = this.replies.findIndex((r) => r.type === req.type);
      if (i >= 0) return this.replies.splice(i, 1)[0] as Extract<ServerReply, { type: T }>;
      await this.next(`a "${req.type}" reply`);
    }
  }

  async port(): Promise<number> {
    for (;;) {
      const r = this.replies.find((m) => m.type === "port");
      if (r?.type === "port") return r.port;
      await this.next("the server's port");
    }
  }

  async stop(): Promise<void> {
    try {
      if (this.child.connected) this.child.send({ type: "stop" } satisfies ServerRequest);
    } catch {
      this.kill();
    }
    const timer = setTimeout(() => this.child.kill(), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }
}

const NAMES: Record<IngestImpl, string> = { ours: "tooldb-dht", legacy: "tool-db 2.6.6" };

async function runOne(impl: IngestImpl, records: ToolDbRecord[], ids: string[], total: number, window: number, warmup: number, memPoint: number): Promise<ImplIngestFigures> {
  const server = ServerChild.start(impl);
  let writer: ToolDb | undefined;
  try {
    const port = await server.port();
    writer = new ToolDb({ topic: TOPIC, peers: [{ host: "127.0.0.1", port }], maxRetries: 3, wait: 50 });
    const linked = new Promise<void>((resolve) => writer!.once("peer-connect", () => resolve()));
    await writer.ready;
    await Promise.race([
      linked,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`writer could not link to the ${impl} server`)), 10_000).unref()),
    ]);

    const w = writer;
    let sent = 0;
    const send = () => {
      const n = sent++;
      w.network.sendToAll({ type: "put", id: ids[n]!, data: records[n]! });
    };
    const sendUntil = async (end: number) => {
      while (sent < end) {
        while (sent < end && sent - server.count < window) send();
        // Refill once half the window is verified.
        await server.untilCount(Math.min(end, sent - window / 2));
      }
      await server.untilCount(end);
    };

    await sendUntil(warmup);
    let t = performance.now();
    await sendUntil(memPoint);
    const early = (performance.now() - t) / 1000;
    const atPoint = await server.ask({ type: "mem" });
    const writerCpu = process.cpuUsage();
    t = performance.now();
    await sendUntil(total);
    const late = (performance.now() - t) / 1000;
    const writerUsage = process.cpuUsage(writerCpu);
    const atTotal = await server.ask({ type: "mem" });
    const check = await server.ask({ type: "check", keys: KEYS, sent: total, prefix: KEY_PREFIX });

    const seconds = early + late;
    return {
      impl,
      name: NAMES[impl],
      warmup,
      timedPuts: total - warmup,
      seconds,
      putsPerSecond: (total - warmup) / seconds,
      earlyPerSecond: (memPoint - warmup) / early,
      latePerSecond: total > memPoint ? (total - memPoint) / late : NaN,
      rssAtPoint: atPoint.rss,
      heapAtPoint: atPoint.heap,
      rssAtTotal: atTotal.rss,
      heapAtTotal: atTotal.heap,
      cpuPerPut: total > memPoint ? (atTotal.cpu - atPoint.cpu) / (total - memPoint) : NaN,
      writerCpuPerPut: total > memPoint ? (writerUsage.user + writerUsage.system) / (total - memPoint) : NaN,
      dedupIdsAtPoint: atPoint.dedupIds,
      dedupIdsAtTotal: atTotal.dedupIds,
      dedupOutHashesAtPoint: atPoint.dedupOutHashes,
      dedupOutHashesAtTotal: atTotal.dedupOutHashes,
      storedAtTotal: atTotal.stored,
      storeCheckOk: check.ok,
      storeCheckProblems: check.problems,
    };
  } catch (err) {
    server.kill();
    throw err;
  } finally {
    await writer?.close();
    await server.stop();
  }
}

/**
 * Verified puts/s and server memory, tooldb-dht then tool-db 2.6.6, with the
 * same pre-signed records and message ids.
 */
export async function ingestBenchmark(total = 100_000, window = 2000, runCount = 2, progress?: (line: string) => void): Promise<IngestFigures> {
  if (!Number.isInteger(total) || total < 1000) throw new RangeError("total must be an integer >= 1000");
  if (!Number.isInteger(runCount) || runCount < 1) throw new RangeError("runs must be an integer >= 1");
  const warmup = Math.min(2000, Math.floor(total / 10));
  const memPoint = Math.min(MEM_POINT, total);

  const signStart = performance.now();
  const records = await presignForIngest(total);
  const signPerSecond = total / ((performance.now() - signStart) / 1000);
  const ids = messageIds(total);

  // Runs alternate (ours, 2.6.6, then 2.6.6, ours, …): on a shared box 2.6.6's rate moved by a third
  // between two runs minutes apart, so one run of each made the ratio a draw.
  const runs: Record<IngestImpl, ImplIngestFigures[]> = { ours: [], legacy: [] };
  for (let r = 0; r < runCount; r++) {
    for (const impl of (r % 2 === 0 ? ["ours", "legacy"] : ["legacy", "ours"]) as IngestImpl[]) {
      runs[impl].push(await runOne(impl, records, ids, total, window, warmup, memPoint));
      progress?.(`${NAMES[impl]} run ${r + 1} of ${runCount}: ${fmt(runs[impl].at(-1)!.putsPerSecond, 0)} verified puts/s`);
    }
  }
  const ours = runs.ours[0]!;
  const legacy = runs.legacy[0]!;
  const rates = { ours: runs.ours.map((f) => f.putsPerSecond), legacy: runs.legacy.map((f) => f.putsPerSecond) };
  const growth = (f: ImplIngestFigures, which: "rss" | "heap") => (which === "rss" ? f.rssAtTotal - f.rssAtPoint : f.heapAtTotal - f.heapAtPoint);
  return {
    total,
    window,
    memPoint,
    keys: KEYS,
    signPerSecond,
    ours,
    legacy,
    rates,
    throughputRatio: median(rates.ours) / median(rates.legacy),
    rssGrowthRatio: growth(ours, "rss") / growth(legacy, "rss"),
    heapGrowthRatio: growth(ours, "heap") / growth(legacy, "heap"),
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function signedMib(bytes: number): string {
  return `${bytes >= 0 ? "+" : "-"}${mib(Math.abs(bytes))}`;
}

/** A growth ratio is only meaningful when 2.6.6 grew by a clear margin. */
function growthRatio(r: number, legacyGrowth: number): string {
  return legacyGrowth > 1024 * 1024 && Number.isFinite(r) ? fmt(r, 2) : "n/a (2.6.6 did not grow by 1 MiB)";
}

export function printIngestFigures(f: IngestFigures, print: (line: string) => void): void {
  const { ours: o, legacy: l } = f;
  const n = (x: number) => x.toLocaleString("en-US");
  const row = (label: string, a: string, b: string, ratio = "") => print(`  ${label.padEnd(38)} ${a.padStart(18)} ${b.padStart(18)}${ratio ? `   ${ratio}` : ""}`);
  print(`signing (done before timing): ${fmt(f.signPerSecond, 0)} records/s; ${n(f.total)} key-bound records, pow 0, ${f.keys} keys written in turn, ≤ ${n(f.window)} puts in flight`);
  row("", o.name, l.name, "ours / 2.6.6");
  const runs = f.rates.ours.length;
  row(`verified puts/s (puts ${n(o.warmup + 1)}–${n(f.total)})`, fmt(median(f.rates.ours), 0), fmt(median(f.rates.legacy), 0), fmt(f.throughputRatio, 2));
  if (runs > 1) {
    row("  each run", f.rates.ours.map((x) => fmt(x, 0)).join(" / "), f.rates.legacy.map((x) => fmt(x, 0)).join(" / "));
    print(`  (medians of ${runs} alternating runs, ours first then 2.6.6 first; the rows below are from the first run of each)`);
  }
  if (f.total > f.memPoint) {
    row(`  puts ${n(o.warmup + 1)}–${n(f.memPoint)}`, fmt(o.earlyPerSecond, 0), fmt(l.earlyPerSecond, 0), fmt(o.earlyPerSecond / l.earlyPerSecond, 2));
    row(`  puts ${n(f.memPoint + 1)}–${n(f.total)}`, fmt(o.latePerSecond, 0), fmt(l.latePerSecond, 0), fmt(o.latePerSecond / l.latePerSecond, 2));
  }
  if (f.total > f.memPoint) {
    row(`  server CPU a put, all threads (µs)`, fmt(o.cpuPerPut, 0), fmt(l.cpuPerPut, 0), fmt(o.cpuPerPut / l.cpuPerPut, 2));
    row(`  writer CPU a put (µs)`, fmt(o.writerCpuPerPut, 0), fmt(l.writerCpuPerPut, 0));
    // Server and writer share the machine: their CPU a put over its cores bounds the rate this code can reach here.
    const bound = (x: ImplIngestFigures) => (cpus().length * 1e6) / (x.cpuPerPut + x.writerCpuPerPut);
    row(`  the machine's bound: ${cpus().length} cores / CPU a put`, `${fmt(bound(o), 0)}/s`, `${fmt(bound(l), 0)}/s`);
    print(`  (reached ${fmt((o.latePerSecond / bound(o)) * 100, 0)} % / ${fmt((l.latePerSecond / bound(l)) * 100, 0)} % of it; 2.6.6 does all its work on one thread, busy all the time, so it stays far below the cores' bound)`);
  }
  row(`server RSS after ${n(f.memPoint)} puts`, mib(o.rssAtPoint), mib(l.rssAtPoint));
  row(`server RSS after ${n(f.total)} puts`, mib(o.rssAtTotal), mib(l.rssAtTotal));
  const oRss = o.rssAtTotal - o.rssAtPoint;
  const lRss = l.rssAtTotal - l.rssAtPoint;
  row("  RSS growth", signedMib(oRss), signedMib(lRss), growthRatio(f.rssGrowthRatio, lRss));
  row(`server heap after ${n(f.memPoint)} puts`, mib(o.heapAtPoint), mib(l.heapAtPoint));
  row(`server heap after ${n(f.total)} puts`, mib(o.heapAtTotal), mib(l.heapAtTotal));
  const oHeap = o.heapAtTotal - o.heapAtPoint;
  const lHeap = l.heapAtTotal - l.heapAtPoint;
  row("  heap growth", signedMib(oHeap), signedMib(lHeap), growthRatio(f.heapGrowthRatio, lHeap));
  row(`dedup entries after ${n(f.memPoint)} / ${n(f.total)}`, `${n(o.dedupIdsAtPoint)} / ${n(o.dedupIdsAtTotal)}`, `${n(l.dedupIdsAtPoint + l.dedupOutHashesAtPoint)} / ${n(l.dedupIdsAtTotal + l.dedupOutHashesAtTotal)}`);
  for (const x of [o, l]) {
    const check = x.storeCheckOk ? `the store holds the latest record of all ${f.keys} keys` : `STORE CHECK FAILED: ${x.storeCheckProblems.join("; ")}`;
    print(`  ${x.name}: ${n(x.storedAtTotal)} store writes; ${check}`);
  }
  const idGrowth = l.dedupIdsAtTotal - l.dedupIdsAtPoint;
  print(`Why 2.6.6 grows: it remembers every message id in processedIds[type] and every put hash it sends on in processedOutHashes[peer]:`);
  print(`  plain arrays, never trimmed, searched with includes() on every message (O(n) per message, hence the falling rate).`);
  print(
    `  Here processedIds gained ${n(idGrowth)} entries between ${n(f.memPoint)} and ${n(f.total)} puts` +
      (idGrowth > 0 ? ` (heap +${fmt(lHeap / idGrowth, 0)} bytes per put)` : "") +
      `; processedOutHashes holds ${n(l.dedupOutHashesAtTotal)} (it grows per put relayed to another server; this one has none).`,
  );
  print(`  That is the heap growth above: both stores stay at ${f.keys} records, and tooldb-dht's id set is capped (dedupCapacity): ${n(o.dedupIdsAtTotal)} ids at both points.`);
  const rssRatio = oRss / lRss;
  if (!(lRss > 1024 * 1024) || (rssRatio > 0.5 && rssRatio < 2)) {
    print(
      `  RSS (allocator pages kept after GC, off-heap buffers) grew ${signedMib(oRss)} / ${signedMib(lRss)}: at ${n(f.total)} puts the arrays' ` +
        `${mib(Math.max(0, lHeap))} is within that noise, so the heap, not RSS, tells them apart.`,
    );
  } else {
    print(`  RSS grew ${signedMib(oRss)} / ${signedMib(lRss)}.`);
  }
}
