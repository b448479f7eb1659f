/**
 * Server reconciliation at scale (issue 10): a new server catching up from a
 * peer holding N records, beside a raw transfer of the same records over one
 * WebSocket in the same run; then reconciliation after 0.1 %, 1 % and 10 %
 * divergence (each side writes half of the difference while apart, spread
 * over the whole time range). Each server is its own process on LevelDB.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { startLatencyProxy, type LatencyProxy } from "../test/helpers/latency-proxy.js";
import { fmt, mib } from "./stats.js";

interface Reply {
  error?: string;
  port?: number;
  bytes?: number;
  size?: number;
  seconds?: number;
  bytesIn?: number;
  bytesOut?: number;
  records?: number;
  run?: RangeSyncRun;
  verifySeconds?: number;
  threadVerifySeconds?: number;
  threadCpuSeconds?: number;
  cpuSeconds?: number;
  writeCpuSeconds?: number;
  /** Signature checks the verification pool did during the catch-up (of them, `mainChecks` by the main thread helping its threads), and how many threads the pool runs. */
  threadChecks?: number;
  mainChecks?: number;
  verifyThreads?: number;
  writeSeconds?: number;
  refusals?: Record<string, number>;
  maxRss: number;
  rss: number;
  rssSplit?: { anon: number; file: number };
  /** Work charged to peers' sync budgets (`watched`). */
  work?: number;
}

class Node {
  private readonly child: ChildProcess;
  readonly ready: Promise<void>;

  constructor() {
    this.child = fork(fileURLToPath(new URL("./sync-node.js", import.meta.url)), { stdio: "inherit", execArgv: (process.env.BENCH_CHILD_ARGS ?? "").split(" ").filter(Boolean) });
    this.ready = new Promise((resolve) => this.child.once("message", () => resolve()));
  }

  ask(command: Record<string, unknown>): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.child.once("message", (m: Reply) => {
        if (m.refusals && Object.keys(m.refusals).length > 0) console.log(`  … refusals during ${String(command.cmd)}: ${JSON.stringify(m.refusals)}`);
        return m.error ? reject(new Error(m.error)) : resolve(m);
      });
      this.child.send(command);
    });
  }

  async close(): Promise<void> {
    await this.ask({ cmd: "close" }).catch(() => undefined);
  }
}

export interface CatchUpFigures {
  records: number;
  recordBytes: number;
  seconds: number;
  bytesIn: number;
  bytesOut: number;
  peakRss: number;
  sourcePeakRss: number;
  /** Peak anonymous / file-backed (mmapped LevelDB tables, the node binary) RSS of each server during the catch-up, sampled. */
  peakRssSplit: { anon: number; file: number };
  sourcePeakRssSplit: { anon: number; file: number };
  rounds: number;
  rawSeconds: number;
  rawBytes: number;
  /** Raw OpenSSL verification (node:crypto) of the same signatures on all cores (libuv's pool; one thread a core), and a plain classic-level batch write of the same records, in this run. */
  floorVerifySeconds: number;
  floorThreadVerifySeconds: number;
  floorWriteSeconds: number;
  /**
   * CPU time (all threads) of the engines alone on the same records, in this run: the raw transfer's
   * source (classic-level reads, ws sends) and receiver (ws, JSON.parse, ToolDb's hash check on
   * node:crypto), the verification (one thread a core) and the classic-level batch write.
   */
  engineCpu: { serve: number; fetch: number; verify: number; write: number };
  /** CPU time (all threads) of the new server during the catch-up, and of the floor's verify + write: less noisy than wall time on a shared machine. */
  cpuSeconds: number;
  floorCpuSeconds: number;
  /** CPU time (all threads) of the source server while it served the catch-up. */
  sourceCpuSeconds: number;
  /** Cores of this machine: with the CPU times above, the shortest catch-up it allows. */
  cores: number;
  /** Signature checks done by the new server's verification pool during the catch-up (the rest took libuv's pool), of them `mainChecks` by its main thread helping the threads, and the threads' number. */
  threadChecks: number;
  mainChecks: number;
  verifyThreads: number;
}

export interface DivergenceFigures {
  fraction: number;
  /** Round trip added between the servers by a proxy (BENCH_SYNC_RTT), ms; 0 on plain loopback. */
  rtt: number;
  /** "changes": both servers had checkpoints of each other's change feed; "range": they had none (range reconciliation). */
  mode: string;
  differing: number;
  differingBytes: number;
  seconds: number;
  rounds: number;
  /** Ranges: the most index items one message of the dialer read (its budget grows across a long round trip). */
  readsPerMessage: number;
  /** Ranges: the dialer's work on the answers, charged to the responder's sync budget, and the responder's on the dialer's requests, charged to the dialer's (index items read; a range counts 8). */
  work: number;
  responderWork: number;
  bytes: number;
  /** CPU time of both servers (all threads) during the run. */
  cpuSeconds: number;
  complete: boolean;
}

export async function syncBenchmark(records: number, log: (line: string) => void): Promise<{ catchUp: CatchUpFigures; divergence: DivergenceFigures[] }> {
  const dir = await mkdtemp(join(tmpdir(), "tooldb-bench-sync-"));
  const t0 = Date.now() - 400 * 24 * 3600_000;
  const span = 365 * 24 * 3600_000;
  // Seeded by a process of its own that then closes the store, so that server A's peak RSS is that of serving, not of signing.
  log(`seeding ${records.toLocaleString()} signed records into server A's store (LevelDB) …`);
  const seeder = new Node();
  await seeder.ready;
  await seeder.ask({ cmd: "start", dir: join(dir, "a") });
  const seeded = await seeder.ask({ cmd: "seed", count: records, prefix: "rec/", t0, spacing: span / records });
  await seeder.close();
  const [a, b] = [new Node(), new Node()];
  let proxy: LatencyProxy | undefined;
  try {
    await Promise.all([a.ready, b.ready]);
    const [{ port: portA }] = await Promise.all([a.ask({ cmd: "start", dir: join(dir, "a") }), b.ask({ cmd: "start", dir: join(dir, "b") })]);

    log("catch-up of empty server B from A …");
    await a.ask({ cmd: "watch" });
    const link = await b.ask({ cmd: "link", port: portA });
    const source = await a.ask({ cmd: "watched" });
    const { port: rawPort } = await a.ask({ cmd: "rawServe" });
    const raw = await b.ask({ cmd: "rawFetch", port: rawPort });
    log("floor: raw verification and raw LevelDB batch write of the same records on B …");
    const rawServed = await a.ask({ cmd: "rawServed" });
    const floor = await b.ask({ cmd: "floor" });
    const catchUp: CatchUpFigures = {
      records,
      recordBytes: seeded.bytes!,
      seconds: link.seconds!,
      bytesIn: link.bytesIn!,
      bytesOut: link.bytesOut!,
      peakRss: link.maxRss,
      sourcePeakRss: source.maxRss,
      peakRssSplit: link.rssSplit!,
      sourcePeakRssSplit: source.rssSplit!,
      rounds: link.run!.rounds,
      rawSeconds: raw.seconds!,
      rawBytes: raw.bytes!,
      floorVerifySeconds: floor.verifySeconds!,
      floorThreadVerifySeconds: floor.threadVerifySeconds!,
      floorWriteSeconds: floor.writeSeconds!,
      engineCpu: { serve: rawServed.cpuSeconds!, fetch: raw.cpuSeconds!, verify: floor.threadCpuSeconds!, write: floor.writeCpuSeconds! },
      cpuSeconds: link.cpuSeconds!,
      floorCpuSeconds: floor.cpuSeconds!,
      sourceCpuSeconds: source.cpuSeconds!,
      cores: availableParallelism(),
      threadChecks: link.threadChecks ?? 0,
      mainChecks: link.mainChecks ?? 0,
      verifyThreads: link.verifyThreads ?? 0,
    };
    if (!link.run!.complete || raw.records !== records) throw new Error(`catch-up incomplete: ${JSON.stringify(link.run)}, raw ${raw.records}`);

    const divergence: DivergenceFigures[] = [];
    // BENCH_SYNC_DIVERGENCE=0 measures the catch-up only (the divergence steps add a while at 1,000,000);
    // a list (BENCH_SYNC_DIVERGENCE=0.01,0.1) measures those fractions only.
    // Each divergence twice: after a short outage (both keep checkpoints of the other's change feed), and with no checkpoint (range reconciliation).
    const asked = process.env.BENCH_SYNC_DIVERGENCE;
    const fractions = asked === "0" ? [] : asked ? asked.split(",").map(Number) : [0.001, 0.01, 0.1];
    // BENCH_SYNC_RTT=<ms>: the divergence runs go through a proxy that adds this round trip (a WAN), loopback's bandwidth kept.
    const rtt = Number(process.env.BENCH_SYNC_RTT ?? 0);
    proxy = rtt > 0 && fractions.length > 0 ? await startLatencyProxy(portA!, rtt / 2) : undefined;
    if (proxy) log(`divergence runs through a proxy adding a round trip of ${rtt} ms`);
    for (const [fraction, mode] of fractions.flatMap((f) => [[f, "changes"], [f, "range"]] as const)) {
      const each = Math.max(1, Math.round((records * fraction) / 2));
      log(`divergence ${fraction * 100} % (${mode}): each side writes ${each.toLocaleString()} records while apart …`);
      // Interleaved with the existing records over the whole time range (the hard case, not only recent writes).
      const [onA, onB] = await Promise.all([
        a.ask({ cmd: "seed", count: each, prefix: `a${fraction}${mode}/`, t0: t0 + 0.25 * (span / records), spacing: span / each }),
        b.ask({ cmd: "seed", count: each, prefix: `b${fraction}${mode}/`, t0: t0 + 0.5 * (span / records), spacing: span / each }),
      ]);
      if (mode === "range") await Promise.all([a.ask({ cmd: "forget" }), b.ask({ cmd: "forget" })]);
      // With BENCH_SYNC_CPUPROF the source's profile is of the last divergence measured.
      await a.ask({ cmd: "watch" });
      const r = await b.ask({ cmd: "link", port: proxy?.port ?? portA });
      const watched = await a.ask({ cmd: "watched" });
      const [sizeA, sizeB] = await Promise.all([a.ask({ cmd: "size" }), b.ask({ cmd: "size" })]);
      divergence.push({
        fraction,
        rtt,
        mode: r.run!.mode,
        differing: 2 * each,
        differingBytes: onA.bytes! + onB.bytes!,
        seconds: r.seconds!,
        rounds: r.run!.rounds,
        readsPerMessage: r.run!.readsPerMessage ?? 0,
        work: r.run!.work ?? 0,
        responderWork: watched.work ?? 0,
        bytes: r.bytesIn! + r.bytesOut!,
        cpuSeconds: r.cpuSeconds! + watched.cpuSeconds!,
        complete: r.run!.complete && sizeA.size === sizeB.size,
      });
    }
    return { catchUp, divergence };
  } finally {
    await proxy?.close();
    await Promise.all([a.close(), b.close()]);
    await rm(dir, { recursive: true, force: true });
  }
}

export function printSyncFigures(f: { catchUp: CatchUpFigures; divergence: DivergenceFigures[] }, out: (line: string) => void): void {
  const c = f.catchUp;
  out(`catch-up of ${c.records.toLocaleString()} records (${mib(c.recordBytes)} of record JSON): ${fmt(c.seconds, 2)} s, ${fmt(c.records / c.seconds, 0)} records/s, ${c.rounds} reconciliation rounds`);
  out(`  bytes to the new server ${mib(c.bytesIn)} (${fmt(c.bytesIn / c.recordBytes, 2)} × the records), from it ${mib(c.bytesOut)}`);
  out(`  raw transfer of the same records over one WebSocket (no verification, no store): ${fmt(c.rawSeconds, 2)} s, ${mib(c.rawBytes)}`);
  // All-core verification: the faster of the two raw ways on this machine, in this run.
  const verify = Math.min(c.floorVerifySeconds, c.floorThreadVerifySeconds);
  const floor = c.rawSeconds + verify + c.floorWriteSeconds;
  out(`  all-core verification of the same signatures, same run (raw OpenSSL through node:crypto): ${fmt(verify, 2)} s = ${fmt(c.records / verify, 0)} /s (libuv's pool ${fmt(c.floorVerifySeconds, 2)} s, one thread a core ${fmt(c.floorThreadVerifySeconds, 2)} s)`);
  out(`  ratio catch-up time / all-core verification: ${fmt(c.seconds / verify, 2)} (aim ≤ 1.3: transfer, parsing, hashing and writes hidden behind the signature checks)`);
  out(`  summed floor: raw transfer ${fmt(c.rawSeconds, 2)} s + verification ${fmt(verify, 2)} s + classic-level batch write ${fmt(c.floorWriteSeconds, 2)} s = ${fmt(floor, 2)} s; catch-up / summed floor ${fmt(c.seconds / floor, 2)}; catch-up / raw transfer ${fmt(c.seconds / c.rawSeconds, 1)}`);
  out(`  CPU time of the new server (all threads): catch-up ${fmt(c.cpuSeconds, 2)} s = ${fmt((c.cpuSeconds / c.records) * 1e6, 0)} µs a record, floor's verify (libuv's pool) + write ${fmt(c.floorCpuSeconds, 2)} s = ${fmt((c.floorCpuSeconds / c.records) * 1e6, 0)} µs a record (ratio ${fmt(c.cpuSeconds / c.floorCpuSeconds, 2)})`);
  // Both servers share the machine: their CPU time over its cores is the shortest catch-up this code allows here.
  const bound = (c.cpuSeconds + c.sourceCpuSeconds) / c.cores;
  out(`  CPU time of both servers: new ${fmt((c.cpuSeconds / c.records) * 1e6, 0)} + source ${fmt((c.sourceCpuSeconds / c.records) * 1e6, 0)} µs a record; on ${c.cores} cores that is at least ${fmt(bound, 2)} s = ${fmt(bound / verify, 2)} × the verification (the catch-up used the cores ${fmt((bound / c.seconds) * 100, 0)} % of its time)`);
  out(`  signature checks on the new server's ${c.verifyThreads} verification thread(s) (TOOLDB_VERIFY_THREADS) and its main thread helping them: ${fmt(c.threadChecks - c.mainChecks, 0)} + ${fmt(c.mainChecks, 0)} of ${fmt(c.records, 0)} records (the rest on libuv's pool)`);
  // What any pipeline built on these engines needs on this machine, before any code of ours runs.
  const e = c.engineCpu;
  const engines = e.serve + e.fetch + e.verify + e.write;
  const us = (s: number) => fmt((s / c.records) * 1e6, 0);
  out(`  the engines alone on the same records, CPU a record: source's reads + ws sends ${us(e.serve)} µs, ws receive + JSON.parse + hash check ${us(e.fetch)} µs, verification ${us(e.verify)} µs, classic-level write ${us(e.write)} µs = ${us(engines)} µs; on ${c.cores} cores at least ${fmt(engines / c.cores, 2)} s = ${fmt(engines / c.cores / verify, 2)} × the verification (the least any catch-up on this machine can reach; this one ${fmt(c.seconds / (engines / c.cores), 2)} × that)`);
  const split = (s: { anon: number; file: number }) => `anonymous ≤ ${mib(s.anon)}, file-backed ≤ ${mib(s.file)}`;
  out(`  peak RSS: new server ${mib(c.peakRss)} (aim < 300 MiB; ${split(c.peakRssSplit)}), source server ${mib(c.sourcePeakRss)} (serving the records; ${split(c.sourcePeakRssSplit)})`);
  out("    (file-backed: pages of LevelDB's mmapped table files and of the node binary, page cache the kernel may drop at any time; anonymous: heap, buffers, LevelDB's caches and memtables)");
  for (const d of f.divergence) {
    const byFeed = f.divergence.find((e) => e.fraction === d.fraction && e.mode === "changes");
    const vsFeed = d.mode !== "changes" && byFeed ? `, ${fmt(d.seconds / byFeed.seconds, 2)} × the change feed's time (aim ≤ 2 at 10 %)` : "";
    const wan = d.rtt > 0 ? ` across a round trip of ${d.rtt} ms` : "";
    out(
      `divergence ${fmt(d.fraction * 100, 1)} %${wan} by ${d.mode === "changes" ? "change feed " : "ranges      "} (${d.differing.toLocaleString()} records differ, ${mib(d.differingBytes)}): ${fmt(d.seconds, 2)} s${vsFeed}, ${d.rounds} range rounds${d.readsPerMessage ? ` (≤ ${d.readsPerMessage.toLocaleString()} index reads a message; work charged: by the dialer ${fmt(d.work / 1e6, 1)} M, by the responder ${fmt(d.responderWork / 1e6, 1)} M items, of a default budget of 24 × (store + 10,000))` : ""}, ${mib(d.bytes)} both ways = ${fmt(d.bytes / d.differingBytes, 2)} × the differing records (aim ≤ 2.5 at 1 %), CPU of both servers ${fmt(d.cpuSeconds, 2)} s = ${fmt((d.cpuSeconds / d.differing) * 1e6, 0)} µs a differing record${d.complete ? "" : " INCOMPLETE"}`,
    );
  }
}
