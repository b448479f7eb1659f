/**
 * The parts of `npm run bench` and what tunes them: `npm run bench -- --help`
 * prints this. Each part runs under a time bound (BENCH_PART_TIMEOUT_MIN) and
 * says when it starts and ends; long parts print progress lines of their own.
 */
export interface BenchPart {
  name: string;
  what: string;
  /** Environment variables that size the part, with their defaults. */
  vars: string[];
}

export const BENCH_PARTS: BenchPart[] = [
  { name: "relay", what: "client -> server -> subscriber, beside the raw all-core verify rate", vars: ["BENCH_PUTS=200000"] },
  { name: "ingest", what: "one writer -> one server, tooldb-dht vs tool-db 2.6.6", vars: ["BENCH_INGEST_PUTS=100000", "BENCH_INGEST_RUNS=2"] },
  { name: "discovery", what: "time to find a server on a 50-node loopback DHT; then beside 91 and 1,000 bogus announces", vars: ["BENCH_RUNS=9", "BENCH_HOSTILE_RUNS=3"] },
  { name: "bundle", what: "browser bundle sizes beside the Node entry", vars: [] },
  { name: "durability", what: "fsync cost and acknowledged puts on LevelDB", vars: ["BENCH_DURABLE_WRITES=20000", "BENCH_ACKED_PUTS=500"] },
  { name: "browser", what: "a Chromium page writer beside a Node writer", vars: ["BENCH_BROWSER_SAMPLES=500", "BENCH_BROWSER_PUTS=5000"] },
  { name: "hyperswarm", what: "Hyperswarm transport and the peer cache", vars: ["BENCH_RUNS=9", "BENCH_HS_PUTS=20000"] },
  { name: "crdt", what: "10,000-change CRDT merges beside tool-db 2.6.6", vars: ["BENCH_CRDT_CHANGES=10000"] },
  { name: "flood", what: "a legitimate client's latency while hostile peers flood a server", vars: ["BENCH_FLOOD_GETS=400", "BENCH_FLOOD_ONLY=<scenario>"] },
  { name: "webrtc", what: "WebRTC through a loopback WebTorrent tracker (Node and Chromium)", vars: ["BENCH_RUNS=9", "BENCH_RTC_PUTS=5000"] },
  { name: "sync", what: "server catch-up and divergence by change feed and by ranges", vars: ["BENCH_SYNC_RECORDS=100000,1000000 (--quick: 20000)", "BENCH_SYNC_DIVERGENCE=0 (catch-up only) or a list of fractions (0.01,0.1)", "BENCH_SYNC_GC", "BENCH_SYNC_HEAPPROF=<file>"] },
  { name: "rebuild", what: "reconciliation index rebuild beside a raw classic-level scan + write", vars: ["BENCH_REBUILD_RECORDS=100000,1000000 (--quick: 20000)"] },
  { name: "reads", what: "a fresh read of a key held locally (asks the linked server) beside the local copy and tool-db 2.6.6's reads", vars: ["BENCH_READS=5000 (--quick: 500)"] },
  { name: "fanout", what: "one writer -> 1,000 subscribed clients (also runs connections)", vars: [] },
  { name: "connections", what: "idle verified clients beside raw ws connections", vars: [] },
  { name: "handshake", what: "handshakes with a challenge (proof and ack) beside 2.6.6-style ones, same server", vars: [] },
];

export const PART_TIMEOUT_MIN = Number(process.env.BENCH_PART_TIMEOUT_MIN ?? 60);

export function benchHelp(): string {
  const width = Math.max(...BENCH_PARTS.map((p) => p.name.length));
  const lines = [
    "npm run bench [-- <part>] [-- --quick]",
    "",
    "Prints figures measured in this run on this machine, each beside the raw engine or peer it replaces.",
    "All traffic stays on loopback. Without a part, every part runs in this order:",
    "",
    ...BENCH_PARTS.map((p) => `  ${p.name.padEnd(width)}  ${p.what}${p.vars.length ? `\n  ${" ".repeat(width)}  ${p.vars.join("  ")}` : ""}`),
    "",
    "Options and variables for every part:",
    "  --quick                     CI-sized runs of the scale parts (sync, rebuild, fanout, connections)",
    `  BENCH_PART_TIMEOUT_MIN=${PART_TIMEOUT_MIN}   a part that runs longer is stopped and the run exits 1`,
    "  BENCH_PROGRESS=1            progress lines from the long parts' child processes",
  ];
  return lines.join("\n");
}
