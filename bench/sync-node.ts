/**
 * One server of the reconciliation benchmark, in its own process so that its
 * peak RSS is its own. Driven by its parent over IPC (see bench/sync.ts):
 * seed signed records, link to a peer and time the reconciliation, or serve
 * and fetch the same records raw over one plain WebSocket.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector";
import { getHeapSpaceStatistics } from "node:v8";
import { ClassicLevel } from "classic-level";
import { WebSocket, WebSocketServer } from "ws";
import { EcdsaUser, LevelStore, ToolDb, signRecord, type ToolDbRecord } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { verifyPoolStats } from "../src/crypto/ecdsa.js";
import { boundHashPrefix } from "../src/records/record.js";
import { ThreadVerifier, rawVerify } from "./verify-rate.js";

type Command =
  | { cmd: "start"; dir: string }
  | { cmd: "seed"; count: number; prefix: string; t0: number; spacing: number }
  | { cmd: "link"; port: number }
  | { cmd: "rawServe" }
  | { cmd: "rawFetch"; port: number }
  | { cmd: "rawServed" }
  | { cmd: "floor" }
  | { cmd: "size" }
  | { cmd: "watch" }
  | { cmd: "watched" }
  | { cmd: "forget" }
  | { cmd: "close" };

let db: ToolDb | undefined;
let dir = "";
let author: EcdsaUser | undefined;
let raw: WebSocketServer | undefined;
/** CPU seconds (all threads) the raw serve took, from its connection to its last frame written. */
let rawServeCpu = Number.NaN;
/** Samples this server's RSS split while another server catches up from it (`watch` … `watched`). */
let watcher: ReturnType<typeof startRssSplit> | undefined;
/** This server's CPU use when `watch` began. */
let watchCpu: NodeJS.CpuUsage | undefined;
/** Work this server charged to its peers' sync budgets (`scans`) since `watch`: what answering them cost, in index items read. */
let watchWork = 0;
/** The source's CPU profile during a catch-up (BENCH_SYNC_CPUPROF). */
let cpuProfile: { stop(): Promise<unknown> } | undefined;
/** Refusals by code since the last report (a healthy run has none). */
let refusals: Record<string, number> = {};

/** CPU seconds (user + system, all threads: libuv's pool verifies and writes) since `start`. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;

/**
 * Peak anonymous and file-backed RSS, sampled from /proc (Linux; NaN
 * elsewhere). LevelDB reads its table files through mmap, so every page of a
 * table a server reads (serving a catch-up reads them all) counts in its RSS
 * as a file-backed page: page cache the kernel can drop at any time, unlike
 * anonymous memory (heap, buffers, LevelDB's caches and memtables).
 */
function startRssSplit(): { stop(): { anon: number; file: number } } {
  const peak = { anon: NaN, file: NaN };
  const sample = () => {
    try {
      const status = readFileSync("/proc/self/status", "utf8");
      const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
      peak.anon = Math.max(kib("RssAnon"), peak.anon || 0);
      peak.file = Math.max(kib("RssFile"), peak.file || 0);
    } catch {
      // not Linux
    }
  };
  sample();
  const timer = setInterval(sample, 250);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

/** Used / reserved MiB of V8's old space: what grows when garbage lives long enough to be promoted. */
function oldSpace(): string {
  const old = getHeapSpaceStatistics().find((s) => s.space_name === "old_space");
  return old ? `${mb(old.space_used_size)}/${mb(old.space_size)}` : "?";
}

/** An inspector session on this process (for the profiles below). */
function inspector(): { post(method: string, params?: object): Promise<unknown>; close(): void } {
  const session = new Session();
  session.connect();
  return {
    post: (method, params) => new Promise<unknown>((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result)))),
    close: () => session.disconnect(),
  };
}

/**
 * BENCH_SYNC_HEAPPROF=<file>: V8's sampling heap profile of the catch-up, keeping
 * the samples of objects that lived until a major GC (promoted garbage and what
 * is still live) and dropping those a scavenge collected (BENCH_SYNC_HEAPPROF_ALL=1
 * keeps those too: all allocations): it shows what makes
 * the old generation, and so the RSS, grow. Open it in Chrome's DevTools.
 */
async function startPromotionProfile(): Promise<{ stop(): Promise<unknown> }> {
  const session = inspector();
  await session.post("HeapProfiler.startSampling", { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.BENCH_SYNC_HEAPPROF_ALL === "1" });
  return {
    async stop() {
      const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: unknown };
      session.close();
      return profile;
    },
  };
}

/**
 * BENCH_SYNC_CPUPROF=<prefix>: V8's CPU profile of the main thread during the
 * catch-up, of the new server (<prefix>.catchup.cpuprofile) and of the source
 * (<prefix>.source.cpuprofile). Verification threads are not in it.
 */
async function startCpuProfile(): Promise<{ stop(): Promise<unknown> }> {
  const session = inspector();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = (await session.post("Profiler.stop")) as { profile: unknown };
      session.close();
      return profile;
    },
  };
}

function reply(message: Record<string, unknown>): void {
  process.send!({ ...message, refusals, maxRss: process.resourceUsage().maxRSS * 1024, rss: process.memoryUsage().rss });
  refusals = {};
}

/** Bytes read and written on the socket under a link (ws keeps it as `_socket`). */
function socketBytes(session: PeerSession): { read: number; written: number } {
  const socket = (session.connection as unknown as { socket?: { _socket?: { bytesRead: number; bytesWritten: number } } }).socket?._socket;
  return { read: socket?.bytesRead ?? NaN, written: socket?.bytesWritten ?? NaN };
}

/** Signs `count` records (prefix + i, t0 + i * spacing) and merges them, 1024 at a time; returns their JSON bytes. */
async function seed(count: number, prefix: string, t0: number, spacing: number): Promise<number> {
  author ??= await (async () => {
    const user = new EcdsaUser();
    await user.ready;
    await user.anonUser();
    return user;
  })();
  let bytes = 0;
  for (let i = 0; i < count; i += 1024) {
    const batch: ToolDbRecord[] = await Promise.all(
      Array.from({ length: Math.min(1024, count - i) }, (_, j) => signRecord(author!, `${prefix}${i + j}`, { n: i + j, payload: "x".repeat(64) }, Math.floor(t0 + (i + j) * spacing), 0, false)),
    );
    await Promise.all(batch.map((r) => db!.records.merge(r)));
    for (const r of batch) bytes += JSON.stringify(r).length;
    if (process.env.BENCH_PROGRESS && i % (1024 * 100) === 0 && i > 0) process.stderr.write(`  seeded ${i.toLocaleString()} ${prefix}\n`);
  }
  return bytes;
}

/** Records per step of the floor measurement (the node fetches 1024 ids per request too). */
const FLOOR_CHUNK = 1024;

/**
 * The irreducible engine work of a catch-up on this machine, on the records
 * this node now holds: raw OpenSSL verification of every signature on all
 * cores, two ways (many in flight on libuv's pool; one thread a core, each
 * verifying its share synchronously), and a plain classic-level batch write
 * of the record JSON into a scratch database. Reading the records back is
 * not timed.
 */
async function floor(): Promise<{ verifySeconds: number; threadVerifySeconds: number; writeSeconds: number; writeCpuSeconds: number; cpuSeconds: number; threadCpuSeconds: number; records: number }> {
  author ??= new EcdsaUser();
  await author.ready;
  const scratch = new ClassicLevel<string, string>(`${dir}-floor`, { keyEncoding: "utf8", valueEncoding: "utf8" });
  await scratch.open();
  const threads = new ThreadVerifier();
  let threadVerifySeconds = 0;
  let threadCpuSeconds = 0;
  let verifySeconds = 0;
  let writeSeconds = 0;
  let writeCpuSeconds = 0;
  let cpuSeconds = 0;
  let records = 0;
  const step = async (raws: string[]) => {
    const parsed = raws.map((raw) => JSON.parse(raw) as ToolDbRecord);
    let start = performance.now();
    let cpu = process.cpuUsage();
    const verified = await Promise.all(parsed.map(rawVerify));
    verifySeconds += (performance.now() - start) / 1000;
    cpuSeconds += cpuSince(cpu);
    if (verified.includes(false)) throw new Error("a stored signature does not verify");
    start = performance.now();
    cpu = process.cpuUsage();
    if ((await threads.verify(parsed)) !== 0) throw new Error("a stored signature does not verify");
    threadVerifySeconds += (performance.now() - start) / 1000;
    threadCpuSeconds += cpuSince(cpu);
    start = performance.now();
    cpu = process.cpuUsage();
    await scratch.batch(parsed.map((r, i) => ({ type: "put", key: r.k, value: raws[i]! })));
    writeSeconds += (performance.now() - start) / 1000;
    const writeCpu = cpuSince(cpu);
    writeCpuSeconds += writeCpu;
    cpuSeconds += writeCpu;
    records += raws.length;
  };
  let chunk: string[] = [];
  for await (const [, raw] of db!.store.range()) {
    chunk.push(raw);
    if (chunk.length === FLOOR_CHUNK) {
      await step(chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) await step(chunk);
  await Promise.all([scratch.close(), threads.close()]);
  await rm(`${dir}-floor`, { recursive: true, force: true });
  return { verifySeconds, threadVerifySeconds, writeSeconds, writeCpuSeconds, cpuSeconds, threadCpuSeconds, records };
}

async function handle(c: Command): Promise<void> {
  switch (c.cmd) {
    case "start": {
      dir = c.dir;
      db = new ToolDb({
        server: true,
        host: "127.0.0.1",
        port: 0,
        topic: "bench-sync",
        storageAdapter: LevelStore,
        storageName: c.dir,
        limits: { maxStoreKeys: Infinity, messageRate: Infinity, messageBurst: Infinity },
        // BENCH_SYNC_LEAF=<n>: the leaf size of range reconciliation (RangeSyncOptions.leafIds), to compare.
        rangeSync: { budget: { scansPerItem: 1000, servesPerItem: 100 }, leafIds: process.env.BENCH_SYNC_LEAF ? Number(process.env.BENCH_SYNC_LEAF) : undefined },
      });
      db.on("refused", (e) => (refusals[e.code] = (refusals[e.code] ?? 0) + 1));
      await db.ready;
      // The work charged to peers' budgets (the bench raises the budgets above; this is what a default budget must hold).
      const gate = db.sync.range!.gate;
      const charge = gate.charge.bind(gate);
      gate.charge = (session, kind, amount) => {
        if (kind === "scans") watchWork += amount;
        charge(session, kind, amount);
      };
      return reply({ port: (db.network as unknown as { port: number }).port });
    }
    case "seed":
      return reply({ bytes: await seed(c.count, c.prefix, c.t0, c.spacing) });
    case "floor":
      return reply(await floor());
    case "forget":
      // As if this server had never reconciled with its peer: no change-feed checkpoints, range reconciliation next time.
      await db!.sync.range!.index.feed.forgetCheckpoints();
      return reply({});
    case "watch":
      watcher = startRssSplit();
      watchCpu = process.cpuUsage();
      watchWork = 0;
      if (process.env.BENCH_SYNC_CPUPROF) cpuProfile = await startCpuProfile();
      return reply({});
    case "watched":
      if (cpuProfile) await writeFile(`${process.env.BENCH_SYNC_CPUPROF}.source.cpuprofile`, JSON.stringify(await cpuProfile.stop()));
      return reply({ rssSplit: watcher?.stop(), cpuSeconds: watchCpu ? cpuSince(watchCpu) : undefined, work: watchWork });
    case "size":
      return reply({ size: db!.sync.range!.index.size });
    case "link": {
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      const threadChecksStart = verifyPoolStats()?.verified ?? 0;
      const mainChecksStart = verifyPoolStats()?.helped ?? 0;
      // A run ends in `done`; a link that cannot be made ends in a final dial failure.
      const done = new Promise<RangeSyncRun | string>((resolve) => {
        db!.sync.range!.once("done", resolve);
        db!.on("dial-failed", (e) => e.final && resolve(`link failed: ${e.reason}`));
      });
      const split = startRssSplit();
      const sampler = setInterval(() => {
        // BENCH_SYNC_GC=1: collect first, so that the samples show the live heap (slows the run).
        if (process.env.BENCH_SYNC_GC) (globalThis as { gc?: () => void }).gc?.();
        const m = process.memoryUsage();
        if (process.env.BENCH_PROGRESS) process.stderr.write(`  memory: rss ${mb(m.rss)} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} (old ${oldSpace()}) external ${mb(m.external)} (buffers ${mb(m.arrayBuffers)}), index ${db!.sync.range!.index.size.toLocaleString()}\n`);
      }, 1000);
      const profile = process.env.BENCH_SYNC_HEAPPROF ? await startPromotionProfile() : undefined;
      const cpu = process.env.BENCH_SYNC_CPUPROF ? await startCpuProfile() : undefined;
      db!.network.connectTo("127.0.0.1", c.port, { maxRetries: 20 });
      const run = await done.finally(() => clearInterval(sampler));
      const rssSplit = split.stop();
      if (profile) await writeFile(process.env.BENCH_SYNC_HEAPPROF!, JSON.stringify(await profile.stop()));
      if (cpu) await writeFile(`${process.env.BENCH_SYNC_CPUPROF}.catchup.cpuprofile`, JSON.stringify(await cpu.stop()));
      if (typeof run === "string") throw new Error(run);
      const seconds = (performance.now() - start) / 1000;
      const cpuSeconds = cpuSince(cpuStart);
      const session = db!.network.peers[0]!;
      const bytes = socketBytes(session);
      db!.network.disconnectFrom("127.0.0.1", c.port);
      const threadChecks = (verifyPoolStats()?.verified ?? 0) - threadChecksStart;
      const mainChecks = (verifyPoolStats()?.helped ?? 0) - mainChecksStart;
      return reply({ run, seconds, cpuSeconds, bytesIn: bytes.read, bytesOut: bytes.written, rssSplit, threadChecks, mainChecks, verifyThreads: verifyPoolStats()?.threads ?? 0 });
    }
    case "rawServe": {
      // The same records, as stored, in frames of up to 1 MiB over one plain WebSocket.
      raw = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      raw.on("connection", async (ws) => {
        const cpu = process.cpuUsage();
        let frame: string[] = [];
        let size = 0;
        for await (const [, value] of db!.store.range()) {
          frame.push(value);
          size += value.length;
          if (size > 1024 * 1024 - 4096) {
            ws.send(`[${frame.join(",")}]`);
            frame = [];
            size = 0;
            if (ws.bufferedAmount > 16 * 1024 * 1024) while (ws.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 1));
          }
        }
        if (frame.length > 0) ws.send(`[${frame.join(",")}]`);
        ws.send("end", () => (rawServeCpu = cpuSince(cpu)));
      });
      await once(raw, "listening");
      return reply({ port: (raw.address() as { port: number }).port });
    }
    case "rawServed":
      return reply({ cpuSeconds: rawServeCpu });
    case "rawFetch": {
      const start = performance.now();
      const cpu = process.cpuUsage();
      const ws = new WebSocket(`ws://127.0.0.1:${c.port}`, { maxPayload: 2 * 1024 * 1024 });
      let bytes = 0;
      let records = 0;
      await new Promise<void>((resolve, reject) => {
        ws.on("message", (data) => {
          const text = String(data);
          if (text === "end") return resolve();
          bytes += text.length;
          const parsed = JSON.parse(text) as ToolDbRecord[];
          // ToolDb's hash check, which no pipeline skips: the preimage and its SHA-256, straight on node:crypto.
          for (const r of parsed) if (createHash("sha256").update(boundHashPrefix(r.k, r.v, r.a, r.t) + r.n).digest("hex") !== r.h) throw new Error("a stored hash does not match");
          records += parsed.length;
        });
        ws.on("error", reject);
      });
      const seconds = (performance.now() - start) / 1000;
      const cpuSeconds = cpuSince(cpu);
      ws.close();
      return reply({ seconds, bytes, records, cpuSeconds });
    }
    case "close":
      raw?.close();
      await db?.close();
      reply({});
      process.exit(0);
  }
}

process.on("message", (c: Command) => {
  handle(c).catch((err: unknown) => {
    process.send!({ error: String((err as Error)?.stack ?? err) });
  });
});
process.send!({ ready: true });
