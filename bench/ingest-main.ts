/**
 * Standalone: `UV_THREADPOOL_SIZE=2 node --expose-gc dist/bench/ingest-main.js [total]`
 * prints server-ingest figures, tooldb-dht vs tool-db 2.6.6 (default 100,000 puts).
 */
import { cpus } from "node:os";
import { ingestBenchmark, printIngestFigures } from "./ingest.js";

const total = Number(process.argv[2] ?? process.env.BENCH_INGEST_PUTS ?? 100_000);
if (!Number.isInteger(total) || total < 1000) throw new RangeError("total must be an integer >= 1000");
console.log(`## Server ingest: one writer -> one server (own process), tooldb-dht vs tool-db 2.6.6, loopback`);
console.log(`${cpus().length} cores, Node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? "(default 4)"}`);
printIngestFigures(await ingestBenchmark(total, undefined, Number(process.env.BENCH_INGEST_RUNS ?? 2), (line) => console.log(`  … ${line}`)), (line) => console.log(line));
