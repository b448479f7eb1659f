/**
 * `npm run simulate`: the mesh at scale, measured. With no arguments it runs
 * the figure set of issue 20 (100 servers, 1,000 servers, 100 servers with
 * 20 % churn per minute, 100 servers at 50 puts per second), each with today's flooding relay and with the
 * broadcast tree; `--servers N --clients M --puts P --churn X` runs one
 * scenario (`--rate`, `--delay`, `--seed`, `--mode tree|flood|both`).
 * What is real and what is simulated: docs/simulator.md.
 */
import { instrumentCrypto } from "./async-work.js";
import { runDhtPhase, type DhtPhaseResult } from "./dht-phase.js";
import { runScenario, type PartitionResult, type ScenarioConfig, type ScenarioResult } from "./scenario.js";
import { fmt, max, mean, min, percentile } from "./stats.js";
import { serverPort } from "./sim-node.js";

interface Args extends Omit<ScenarioConfig, "mode"> {
  modes: Array<"tree" | "flood">;
}

function parseArgs(argv: string[]): Array<Args> | undefined {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    values.set(name, value);
  }
  const known = new Set(["servers", "clients", "puts", "churn", "crash", "partition", "rotate", "rate", "delay", "seed", "mode", "settle"]);
  for (const name of values.keys()) if (!known.has(name)) throw new Error(`unknown option --${name} (known: ${[...known].join(", ")})`);
  const num = (name: string, fallback: number) => {
    const v = values.get(name);
    if (v === undefined) return fallback;
    const n = Number(v.endsWith("%") ? Number(v.slice(0, -1)) / 100 : v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  const mode = values.get("mode") ?? "both";
  if (!["both", "tree", "flood"].includes(mode)) throw new Error("--mode is tree, flood or both");
  const modes: Array<"tree" | "flood"> = mode === "both" ? ["flood", "tree"] : [mode as "tree" | "flood"];
  const base = { delayMs: num("delay", 20), seed: num("seed", 1), modes, rate: num("rate", 5) };
  if (!values.has("servers")) {
    if (values.size > (values.has("mode") ? 1 : 0) + (values.has("seed") ? 1 : 0) + (values.has("delay") ? 1 : 0)) throw new Error("give --servers with the other scenario options");
    return undefined;
  }
  const churn = num("churn", 0);
  const crash = num("crash", 0);
  const partitionMs = num("partition", 0) * 1000;
  return [
    {
      ...base,
      servers: Math.max(2, Math.round(num("servers", 100))),
      clients: Math.max(1, Math.round(num("clients", 20))),
      puts: Math.max(1, Math.round(num("puts", 50))),
      churn: churn > 1 ? churn / 100 : churn,
      crash: crash > 1 ? crash / 100 : crash,
      partitionMs,
      rotateMs: values.has("rotate") ? num("rotate", 0) * 1000 : undefined,
      settleMs: num("settle", churn > 0 || crash > 0 || partitionMs > 0 ? 30_000 : 10_000),
    },
  ];
}

/** Issue 20's figure set, and a high put rate. */
function figureSet(base: Pick<Args, "delayMs" | "seed" | "modes">): Args[] {
  return [
    { ...base, servers: 100, clients: 50, puts: 100, rate: 5, churn: 0, settleMs: 10_000 },
    { ...base, servers: 1000, clients: 100, puts: 50, rate: 5, churn: 0, settleMs: 10_000 },
    { ...base, servers: 100, clients: 50, puts: 300, rate: 2, churn: 0.2, settleMs: 30_000 },
    // Overlapping broadcasts: several records cross the tree at once.
    { ...base, servers: 100, clients: 50, puts: 500, rate: 50, churn: 0, settleMs: 10_000 },
  ];
}

/** Puts after which the tree has formed (every link starts eager: the first puts flood and prune). */
const WARMUP_PUTS = 10;

function progress(line: string): void {
  process.stderr.write(`[sim ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function row(name: string, cells: string[]): string {
  return `${name.padEnd(52)}${cells.map((c) => c.padStart(22)).join("")}`;
}

function defined(values: Array<number | undefined>): number[] {
  return values.filter((v): v is number => v !== undefined);
}

function report(args: Args, dht: DhtPhaseResult, results: ScenarioResult[]): string {
  const lines: string[] = [];
  const churn =
    (args.churn > 0 ? `, churn ${fmt(args.churn * 100, 0)} % of servers per minute` : "") +
    ((args.crash ?? 0) > 0 ? `, ${fmt(args.crash! * 100, 0)} % of servers crash silently per minute` : "") +
    ((args.partitionMs ?? 0) > 0 ? `, partition into two halves for ${fmt(args.partitionMs! / 1000, 0)} s` : "");
  lines.push(`\n== ${args.servers} servers, ${args.clients} clients, ${args.puts} puts at ${args.rate}/s, ${args.delayMs} ms links${churn} ==`);
  lines.push(
    `DHT (real bittorrent-dht on loopback, ${args.servers} announcers): announce of all ${fmt(dht.announceMs / 1000, 1)} s` +
      `${dht.announceTimeouts > 0 ? ` (${dht.announceTimeouts} announces not confirmed within 30 s)` : ""}; ` +
      `client lookup p50 ${fmt(percentile(dht.lookupMs, 50), 0)} ms, p99 ${fmt(percentile(dht.lookupMs, 99), 0)} ms; ` +
      `completeness: server lookups mean ${fmt(mean(dht.serverCompleteness) * 100, 1)} % (min ${fmt(min(dht.serverCompleteness) * 100, 1)} %), ` +
      `client lookups mean ${fmt(mean(dht.clientCompleteness) * 100, 1)} % (min ${fmt(min(dht.clientCompleteness) * 100, 1)} %)`,
  );
  lines.push(row("figure", results.map((r) => r.config.mode)));
  const cell = (f: (r: ScenarioResult) => string) => results.map(f);
  const puts = (r: ScenarioResult) => r.puts;
  lines.push(row("copies of a put received per server, mean / max", cell((r) => `${fmt(mean(puts(r).map((p) => p.copiesMean)))} / ${fmt(max(puts(r).map((p) => p.copiesMax)), 0)}`)));
  const steady = (r: ScenarioResult) => r.puts.slice(WARMUP_PUTS);
  lines.push(row(`  the same after the first ${WARMUP_PUTS} puts (tree formed)`, cell((r) => `${fmt(mean(steady(r).map((p) => p.copiesMean)))} / ${fmt(max(steady(r).map((p) => p.copiesMax)), 0)}`)));
  lines.push(row("signature checks of a put per server, mean / max", cell((r) => `${fmt(mean(puts(r).map((p) => p.verifyMean)))} / ${fmt(max(puts(r).map((p) => p.verifyMax)), 0)}`)));
  lines.push(row("time to the last server (ms), p50 / p99", cell((r) => `${fmt(percentile(defined(puts(r).map((p) => p.lastMs)), 50), 0)} / ${fmt(percentile(defined(puts(r).map((p) => p.lastMs)), 99), 0)}`)));
  lines.push(row("hops to the farthest server, p50 / p99", cell((r) => `${fmt(percentile(puts(r).map((p) => p.maxHops), 50), 0)} / ${fmt(percentile(puts(r).map((p) => p.maxHops), 99), 0)}`)));
  lines.push(row("live servers reached by relay alone, mean / min", cell((r) => `${fmt(mean(puts(r).map((p) => p.relayShare)) * 100, 1)} % / ${fmt(min(puts(r).map((p) => p.relayShare)) * 100, 1)} %`)));
  lines.push(row("puts on every live server by the end", cell((r) => `${puts(r).filter((p) => p.completeMs !== undefined).length} of ${puts(r).length}`)));
  lines.push(row("time until every live server holds it (ms), p50/p99/max", cell((r) => {
    const done = defined(puts(r).map((p) => p.completeMs));
    return `${fmt(percentile(done, 50), 0)}/${fmt(percentile(done, 99), 0)}/${fmt(max(done), 0)}`;
  })));
  lines.push(row("server links per server, mean / max", cell((r) => `${fmt(mean(r.links), 1)} / ${fmt(max(r.links), 0)}`)));
  lines.push(row("tree (eager) links per server, mean / max", cell((r) => (r.config.mode === "tree" ? `${fmt(mean(r.eagerLinks), 2)} / ${fmt(max(r.eagerLinks), 0)}` : "-"))));
  lines.push(row("received per server per put: frames, mean / max", cell((r) => `${fmt(r.serverFramesIn.mean, 1)} / ${fmt(r.serverFramesIn.max, 0)}`)));
  lines.push(row("received per server per put: KiB, mean / max", cell((r) => `${fmt(r.serverBytesIn.mean / 1024, 2)} / ${fmt(r.serverBytesIn.max / 1024, 1)}`)));
  lines.push(row("frames per put, all nodes (KiB)", cell((r) => `${fmt(r.putFrames, 0)} (${fmt(r.putBytes / 1024, 0)})`)));
  lines.push(row("JS heap of the process / nodes, KiB", cell((r) => fmt(r.bytesPerNode / 1024, 0))));
  lines.push(row("RSS with the mesh built, MiB", cell((r) => fmt(r.rssBytes / 2 ** 20, 0))));
  if (args.churn > 0 || (args.crash ?? 0) > 0) lines.push(row("servers killed (crashed) / started during the run", cell((r) => `${r.killed} (${r.crashed}) / ${r.joined}`)));
  if ((args.partitionMs ?? 0) > 0) {
    const part = (f: (p: PartitionResult) => string) => cell((r) => (r.partition && r.partition.healedAt >= 0 ? f(r.partition) : "not healed"));
    lines.push(row("partition: puts during it / not everywhere at heal", part((p) => `${p.putsDuring} / ${p.incompleteAtHeal}`)));
    lines.push(row("  after the heal, until on every live server (ms), p50/p99/max", part((p) => {
      const done = defined(p.afterHealMs);
      const never = p.afterHealMs.length - done.length;
      return `${fmt(percentile(done, 50), 0)}/${fmt(percentile(done, 99), 0)}/${fmt(max(done), 0)}${never > 0 ? ` (${never} never)` : ""}`;
    })));
    lines.push(row("  server links across the cut at heal / at the end", part((p) => `${p.crossLinksAtHeal} / ${p.crossLinksAtEnd}`)));
  }
  lines.push(row("simulated / real time (s)", cell((r) => `${fmt(r.simulatedMs / 1000, 1)} / ${fmt(r.realMs / 1000, 1)}`)));
  if (results.length === 2) {
    const [flood, tree] = results as [ScenarioResult, ScenarioResult];
    const ratio = mean(tree.puts.map((p) => p.copiesMean)) / mean(flood.puts.map((p) => p.copiesMean));
    lines.push(`tree / flood: copies per server ${fmt(ratio, 3)}, frames per put ${fmt(tree.putFrames / flood.putFrames, 3)}, bytes per put ${fmt(tree.putBytes / flood.putBytes, 3)}`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  instrumentCrypto();
  const argv = process.argv.slice(2);
  const single = parseArgs(argv);
  const scenarios = single ?? figureSet({ ...(parseArgs(["--servers", "2", ...argv])![0]!) });
  const dhtByServers = new Map<number, DhtPhaseResult>();
  const out: string[] = [];
  for (const args of scenarios) {
    let dht = dhtByServers.get(args.servers);
    if (!dht) {
      progress(`DHT phase: ${args.servers} announcers on a private bittorrent-dht network`);
      dht = await runDhtPhase("sim-topic", Array.from({ length: args.servers }, (_, i) => serverPort(i)), 20, progress);
      dhtByServers.set(args.servers, dht);
    }
    const results: ScenarioResult[] = [];
    for (const mode of args.modes) results.push(await runScenario({ ...args, mode }, dht, progress));
    const text = report(args, dht, results);
    out.push(text);
    process.stdout.write(`${text}\n`);
  }
  if (out.length > 1) process.stdout.write(`\n(all ${out.length} scenarios above)\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`simulate failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
