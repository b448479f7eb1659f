/**
 * `npm run bench`: prints figures measured in this run on this machine.
 * All traffic stays on loopback.
 */
import { cpus } from "node:os";
import { relayBenchmark } from "./relay.js";
import { measureVerifyRate } from "./verify-rate.js";
import { fmt, mib } from "./stats.js";

const only = process.argv[2];

async function relay(): Promise<void> {
  console.log("## Relay: client -> server -> subscribed client (loopback)");
  const verifyRate = await measureVerifyRate();
  console.log(`raw ECDSA P-256 verify rate (WebCrypto, this process): ${fmt(verifyRate, 0)} /s`);
  const total = Number(process.env.BENCH_PUTS ?? 200_000);
  const r = await relayBenchmark(total);
  console.log(`signing (pre-computed before timing): ${fmt(r.signPerSecond, 0)} records/s`);
  console.log(`sustained verified relayed puts: ${fmt(r.putsPerSecond, 0)} /s (${r.puts.toLocaleString()} puts in ${fmt(r.seconds, 2)} s)`);
  console.log(`ratio relayed puts / raw verify rate: ${fmt(r.putsPerSecond / verifyRate, 2)} (each put is verified twice: server and subscriber)`);
  console.log(`latency put -> subscriber, one at a time: p50 ${fmt(r.p50, 3)} ms, p99 ${fmt(r.p99, 3)} ms`);
  console.log(`server RSS after 20k relayed puts: ${mib(r.rssAt20k)}, after ${r.puts.toLocaleString()}: ${mib(r.rssAt200k)} (${fmt(((r.rssAt200k - r.rssAt20k) / r.rssAt20k) * 100)} %)`);
  console.log(`server heap after 20k: ${mib(r.heapAt20k)}, after ${r.puts.toLocaleString()}: ${mib(r.heapAt200k)}`);
}

console.log(`# tooldb-dht benchmarks — ${cpus().length} cores, Node ${process.version}`);
if (!only || only === "relay") await relay();
