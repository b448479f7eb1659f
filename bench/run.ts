/**
 * `npm run bench`: prints figures measured in this run on this machine.
 * All traffic stays on loopback. `npm run bench -- <part>` runs one part
 * (`fanout` includes `connections`); `npm run bench -- --help` lists the
 * parts and their variables (bench/parts.ts).
 */
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { bundleSizes, printBundleSizes } from "../build/browser-bundle.js";
import { browserBenchmark, printBrowserFigures } from "./browser.js";
import { crdtBenchmark, printCrdtFigures } from "./crdt.js";
import { discoveryBenchmark, printDiscoveryFigures } from "./discovery.js";
import { hostileDiscoveryBenchmark, printHostileFigures } from "./discovery-hostile.js";
import { durabilityBenchmark, printDurabilityFigures } from "./durability.js";
import { ingestBenchmark, printIngestFigures } from "./ingest.js";
import { relayBenchmark } from "./relay.js";
import { type RelayEngineCpu, measureRelayEngines } from "./relay-engines.js";
import { presign } from "./presign.js";
import { EcdsaUser } from "../src/index.js";
import { hyperswarmBenchmark, printHyperswarmFigures } from "./hyperswarm.js";
import { floodBenchmark, printFloodFigures } from "./flood.js";
import { printWebRtcFigures, webrtcBenchmark } from "./webrtc.js";
import { fanoutBenchmark, printFanoutFigures } from "./fanout.js";
import { WARM_LINKS, connectionBenchmark, openFileLimit, printConnectionFigures, printConnectionSummary } from "./connections.js";
import { handshakeBenchmark, printHandshakeFigures } from "./handshake.js";
import { printSyncFigures, syncBenchmark } from "./sync.js";
import { printRebuildFigures, rebuildBenchmark } from "./rebuild.js";
import { printReadFigures, readsBenchmark } from "./reads.js";
import { fmt, mib } from "./stats.js";
import { LoadSampler } from "./load.js";
import { measureVerifyRate } from "./verify-rate.js";
import { BENCH_PARTS, PART_TIMEOUT_MIN, benchHelp } from "./parts.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  console.log(benchHelp());
  process.exit(0);
}

// Signatures are verified on libuv's pool. Two busy processes with 4 threads each
// oversubscribe 2 cores, so size the pool to the cores (set before any pool use).
if (!process.env.UV_THREADPOOL_SIZE) {
  // Through sh to raise the open-file limit to the hard limit (10,000 idle clients need 10,000 descriptors).
  const r = spawnSync("sh", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, UV_THREADPOOL_SIZE: String(cpus().length) },
  });
  process.exit(r.status ?? 1);
}

const only = process.argv.slice(2).find((arg) => !arg.startsWith("--"));
if (only !== undefined && !BENCH_PARTS.some((p) => p.name === only)) {
  console.error(`npm run bench: no part named "${only}" (parts: ${BENCH_PARTS.map((p) => p.name).join(", ")}; --help for more)`);
  process.exit(2);
}
let partsRun = 0;

/** Runs a part when it is selected: says when it starts and ends, and stops the run if it exceeds its bound. */
async function part(names: string[], run: () => Promise<void>): Promise<void> {
  if (only !== undefined && !names.includes(only)) return;
  const started = Date.now();
  const index = ++partsRun;
  const total = only === undefined ? BENCH_PARTS.length : only === "fanout" ? 2 : 1; // fanout brings connections
  process.stderr.write(`[bench ${index}/${total}] ${names[0]}: started ${new Date().toISOString()}\n`);
  const watchdog = setTimeout(() => {
    console.error(`npm run bench: part "${names[0]}" ran over ${PART_TIMEOUT_MIN} min (BENCH_PART_TIMEOUT_MIN): stopped`);
    process.exit(1);
  }, PART_TIMEOUT_MIN * 60_000);
  const load = new LoadSampler();
  try {
    await run();
  } finally {
    clearTimeout(watchdog);
    console.log(`  ${load.stop()}`);
    process.stderr.write(`[bench ${index}/${total}] ${names[0]}: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
}
/** `--quick`: CI-sized runs of the scale benchmarks (sync, fanout, connections). */
const quick = process.argv.includes("--quick");

async function relay(): Promise<void> {
  console.log("\n## Relay: client -> server -> subscribed client (loopback, server in its own process)");
  const rates = await measureVerifyRate();
  const verifyRate = rates.best;
  console.log(`raw ECDSA P-256 verify rate (OpenSSL through node:crypto, all cores): ${fmt(verifyRate, 0)} /s (libuv's pool ${fmt(rates.pool, 0)} /s, one thread a core ${fmt(rates.threads, 0)} /s; the faster is the floor)`);
  const total = Number(process.env.BENCH_PUTS ?? 200_000);
  const r = await relayBenchmark(total);
  console.log(`signing (done before timing): ${fmt(r.signPerSecond, 0)} records/s`);
  console.log(`sustained verified relayed puts: ${fmt(r.putsPerSecond, 0)} /s (${r.puts.toLocaleString()} puts in ${fmt(r.seconds, 2)} s)`);
  console.log(`ratio relayed puts / raw all-core verify rate: ${fmt(r.putsPerSecond / verifyRate, 2)} (aim ≥ 0.45; each put is verified twice, by the server and by the subscriber, so 0.5 is the limit)`);
  console.log(`server CPU a relayed put (all threads, after the first 20,000): ${fmt(r.serverCpuPerPut, 0)} µs, of which one signature check (${fmt((cpus().length * 1e6) / verifyRate, 0)} µs of CPU at the floor's rate)`);
  const c = r.serverChecks;
  console.log(`server signature checks after the first 20,000: ${c.threads.toLocaleString()} by its verification threads in ${c.batches.toLocaleString()} messages (${fmt(c.threads / Math.max(1, c.batches), 1)} a message), ${c.helped.toLocaleString()} by its main thread helping them; the rest through libuv's pool`);
  // The three take turns on the same cores: their CPU a put bounds the rate this code can reach here.
  const bound = (cpus().length * 1e6) / (r.serverCpuPerPut + r.clientsCpuPerPut);
  console.log(`writer and subscriber (this process) CPU a put: ${fmt(r.clientsCpuPerPut, 0)} µs; on ${cpus().length} cores the three allow at most ${fmt(bound, 0)} puts/s = ${fmt(bound / verifyRate, 2)} × the verify rate (this run reached ${fmt((r.putsPerSecond / bound) * 100, 0)} % of it)`);
  const e = await relayEngines();
  const engines = 2 * e.hop + 2 * e.verify + e.write;
  const engineBound = (cpus().length * 1e6) / engines;
  console.log(
    `the engines alone, CPU a put: 2 WebSocket hops (stringify, send, receive, JSON.parse, hash check) × ${fmt(e.hop, 0)} µs + 2 signature checks × ${fmt(e.verify, 0)} µs + a classic-level write ${fmt(e.write, 0)} µs = ${fmt(engines, 0)} µs; on ${cpus().length} cores at most ${fmt(engineBound, 0)} puts/s = ${fmt(engineBound / verifyRate, 2)} × the verify rate (the best any relay on these engines reaches on this machine; this run ${fmt((r.putsPerSecond / engineBound) * 100, 0)} % of it)`,
  );
  console.log(`latency put -> subscriber, one put at a time: p50 ${fmt(r.p50, 3)} ms, p99 ${fmt(r.p99, 3)} ms`);
  const growth = ((r.rssAt200k - r.rssAt20k) / r.rssAt20k) * 100;
  console.log(`server RSS after 20,000 relayed puts: ${mib(r.rssAt20k)}; after ${r.puts.toLocaleString()}: ${mib(r.rssAt200k)} (${growth >= 0 ? "+" : ""}${fmt(growth)} %)`);
  console.log(`server heap after 20,000: ${mib(r.heapAt20k)}; after ${r.puts.toLocaleString()}: ${mib(r.heapAt200k)}`);
}

/** The relay's engines alone (bench/relay-engines.ts) on 20,000 records signed for it. */
async function relayEngines(): Promise<RelayEngineCpu> {
  const author = new EcdsaUser();
  await author.ready;
  return measureRelayEngines(await presign(author, 20_000, Date.now() - 10 * 60_000, "engines-", 100));
}

async function ingest(): Promise<void> {
  console.log("\n## Server ingest: one writer -> one server, tooldb-dht vs tool-db 2.6.6 (same records, same run)");
  const runs = Number(process.env.BENCH_INGEST_RUNS ?? (quick ? 1 : 2));
  printIngestFigures(await ingestBenchmark(Number(process.env.BENCH_INGEST_PUTS ?? 100_000), undefined, runs, (line) => console.log(`  … ${line}`)), (line) => console.log(line));
}

async function discovery(): Promise<void> {
  console.log("\n## Discovery on a 50-node loopback DHT (ms: median / min / max)");
  printDiscoveryFigures(await discoveryBenchmark(Number(process.env.BENCH_RUNS ?? 9)), (line) => console.log(line));
  console.log("");
  printHostileFigures(await hostileDiscoveryBenchmark(Number(process.env.BENCH_HOSTILE_RUNS ?? 3)), (line) => console.log(line));
}

async function durability(): Promise<void> {
  console.log("\n## Durable confirmations: fsync cost and acknowledged puts (LevelDB in a temp dir)");
  printDurabilityFigures(await durabilityBenchmark(Number(process.env.BENCH_DURABLE_WRITES ?? 20_000), Number(process.env.BENCH_ACKED_PUTS ?? 500)), (line) => console.log(line));
}

async function hyperswarm(): Promise<void> {
  console.log("\n## Hyperswarm transport and peer cache (HyperDHT testnet and mainline DHT on loopback)");
  const figures = await hyperswarmBenchmark(Number(process.env.BENCH_RUNS ?? 9), Number(process.env.BENCH_HS_PUTS ?? 20_000), (s) => process.stderr.write(`  ${s}\r`));
  printHyperswarmFigures(figures, (line) => console.log(line));
}

async function crdt(): Promise<void> {
  console.log("\n## CRDT merges: 10,000-change map and list documents, beside tool-db 2.6.6 and the plain put rate (same run)");
  printCrdtFigures(await crdtBenchmark(Number(process.env.BENCH_CRDT_CHANGES ?? 10_000)), (line) => console.log(line));
}

async function webrtc(): Promise<void> {
  console.log("\n## WebRTC transport (WebTorrent tracker on loopback, no STUN; Node: node-datachannel, pages: Chromium)");
  const figures = await webrtcBenchmark(Number(process.env.BENCH_RUNS ?? 9), Number(process.env.BENCH_RTC_PUTS ?? 5_000), (s) => process.stderr.write(`  ${s}\r`));
  printWebRtcFigures(figures, (line) => console.log(line));
}

async function browserBundle(): Promise<void> {
  console.log("\n## Browser bundle size (esbuild, minified; beside the Node entry bundled the same way)");
  printBundleSizes(await bundleSizes(), (line) => console.log(line));
}

async function browserWriter(): Promise<void> {
  console.log("\n## Browser page writer vs Node client writer (one server, one Node subscriber, loopback)");
  printBrowserFigures(await browserBenchmark(Number(process.env.BENCH_BROWSER_SAMPLES ?? 500), Number(process.env.BENCH_BROWSER_PUTS ?? 5000)), (line) => console.log(line));
}

async function flood(): Promise<void> {
  console.log("\n## Floods: a legitimate client's get latency while hostile peers flood one server (default limits, loopback)");
  const figures = await floodBenchmark(Number(process.env.BENCH_FLOOD_GETS ?? 400), (line) => console.log(line));
  printFloodFigures(figures, (line) => console.log(line));
}

async function sync(): Promise<void> {
  const sizes = process.env.BENCH_SYNC_RECORDS?.split(",").map(Number) ?? (quick ? [20_000] : [100_000, 1_000_000]);
  for (const records of sizes) {
    console.log(`\n## Server reconciliation at ${records.toLocaleString()} records (two server processes on LevelDB, loopback)`);
    printSyncFigures(await syncBenchmark(records, (line) => console.log(`  … ${line}`)), (line) => console.log(line));
  }
}

async function rebuild(): Promise<void> {
  for (const records of process.env.BENCH_REBUILD_RECORDS?.split(",").map(Number) ?? (quick ? [20_000] : [100_000, 1_000_000])) {
    console.log(`\n## Reconciliation index rebuild at ${records.toLocaleString()} records (LevelDB), beside a raw classic-level scan + batch write`);
    printRebuildFigures(await rebuildBenchmark(records, (line) => console.log(`  … ${line}`)), (line) => console.log(line));
  }
}

async function reads(): Promise<void> {
  console.log("\n## Reads of a key held locally: a fresh read (asks the linked server) beside the local copy and tool-db 2.6.6 (loopback, one process)");
  printReadFigures(await readsBenchmark(Number(process.env.BENCH_READS ?? (quick ? 500 : 5000))), (line) => console.log(line));
}

async function fanout(): Promise<void> {
  console.log("\n## Fan-out and connections on one server (clients are raw WebSockets doing the signed handshake)");
  printFanoutFigures(await fanoutBenchmark(1000, quick ? 200 : 2000, quick ? 50 : 200), (line) => console.log(line));
}

async function connections(): Promise<void> {
  console.log("\n## Idle clients on one server, beside raw ws connections (fresh server process per figure; same ws options and Node flags; memory after full GCs)");
  console.log(`(per client: the server's growth from ${WARM_LINKS} links to ${WARM_LINKS} + N, N = 1,000 or 10,000; young generation capped on both; RSS growth of a few MiB is within the allocator's and V8's slack, so at 1,000 the JS heap figure is the steady one)`);
  for (const clients of quick ? [1000] : [1000, 10_000]) {
    // The clients live in this process: one descriptor each, plus the server's in its own.
    const needed = WARM_LINKS + clients + 1024;
    if (openFileLimit() < needed) {
      console.log(`${clients.toLocaleString()} idle clients: skipped, the open-file limit (${openFileLimit()}) is below ${needed}; raise it (ulimit -n) and run again`);
      continue;
    }
    const figures = await connectionBenchmark(clients, 3, (line) => process.stderr.write(`  … ${line}\r`));
    for (const f of figures) printConnectionFigures(f, (line) => console.log(line));
    printConnectionSummary(figures, (line) => console.log(line));
  }
}

async function handshakes(): Promise<void> {
  console.log("\n## Handshakes with a challenge, beside 2.6.6-style ones (one server; raw WebSocket clients in this process; each link closed once done)");
  printHandshakeFigures(await handshakeBenchmark(quick ? 500 : 2000, quick ? 3 : 5), (line) => console.log(line));
}

console.log(`# tooldb-dht benchmarks — ${cpus().length} cores, Node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE}`);
await part(["relay"], relay);
await part(["ingest"], ingest);
await part(["discovery"], discovery);
await part(["bundle"], browserBundle);
await part(["durability"], durability);
await part(["browser"], browserWriter);
await part(["hyperswarm"], hyperswarm);
await part(["crdt"], crdt);
await part(["flood"], flood);
await part(["webrtc"], webrtc);
await part(["sync"], sync);
await part(["rebuild"], rebuild);
await part(["reads"], reads);
await part(["fanout"], fanout);
await part(["connections", "fanout"], connections);
await part(["handshake"], handshakes);
