/**
 * Flood benchmark: one server (own process, default limits), hostile peers
 * (another process) flooding it with valid signed puts, gets,
 * subscriptions, and 2,000 unfinished handshakes; meanwhile a legitimate
 * client (this process) reads keys it does not hold, one get at a time.
 * Its get latency during each flood is printed beside the same figure
 * without a flood, and the server's RSS at start and after the floods.
 * The budget attacks (bench/flood-abuse.ts): a peer copying the store
 * through server sync under fresh identities (bytes it got per minute),
 * 1,100 sessions from 40 addresses filling the slots (how long a new client
 * takes to link), 100 peers that never read their replies (server RSS with
 * them, and 30 s after they left beside the RSS at start).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ToolDb } from "../src/index.js";
import { ask } from "./child.js";
import { fmt, mib, percentile } from "./stats.js";

const KEYS = 5000;

interface Stats {
  type: "stats";
  rss: number;
  heap: number;
  refusals: Record<string, number>;
  gate: { verified: number; unverified: number; ips: number };
  bans: number;
  subscriptions: number;
  /** Server event-loop delay since the previous stats (ms). */
  lagMs: { p99: number; max: number };
  /** Bytes queued to go out on all links (the send budget's reading). */
  queued: number;
}

export interface FloodPhase {
  name: string;
  p50: number;
  p99: number;
  failures: number;
  sent: number;
  reconnects: number;
  refusals: Record<string, number>;
  after: Stats;
  /** Times the legitimate client lost its link during the phase (and why). */
  drops: string[];
  /** Handshake and slot floods: ms for a new client to link during it. */
  newClientMs?: number;
  /** Server stats while the flood still ran (taken before it stopped). */
  during: Stats;
  /** Bytes the attacker received, and the phase's length (s). */
  attackerBytes: number;
  seconds: number;
}

export interface FloodFigures {
  gets: number;
  baseline: FloodPhase;
  floods: FloodPhase[];
  rssStart: number;
  rssEnd: number;
  /** RSS 30 s after the last attackers left (BENCH_FLOOD_SETTLE_MS). */
  rssSettled: number;
}

function child(file: string, args: string[] = []): ChildProcess {
  const extra = file.includes("server") ? (process.env.BENCH_CHILD_ARGS ?? "").split(" ").filter(Boolean) : [];
  return fork(fileURLToPath(new URL(file, import.meta.url)), args, { execArgv: ["--expose-gc", ...extra], stdio: "inherit" });
}

function connected(db: ToolDb, ms: number): Promise<boolean> {
  if (db.isConnected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    db.once("connect", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [code, n] of Object.entries(after)) if (n - (before[code] ?? 0) > 0) out[code] = n - (before[code] ?? 0);
  return out;
}

export async function floodBenchmark(gets = 400, progress: (line: string) => void = () => undefined): Promise<FloodFigures> {
  const server = child("./flood-server.js", [String(KEYS)]);
  const attacker = child("./flood-attacker.js");
  const { port } = await new Promise<{ port: number }>((resolve) => server.once("message", (m: { port: number }) => resolve(m)));
  const peers = [{ host: "127.0.0.1", port }];
  const client = new ToolDb({ topic: "flood", peers });
  await client.ready;
  await connected(client, 10_000);
  let drops: string[] = [];
  client.on("peer-disconnect", (e) => drops.push(`${e.code} ${e.reason}`));
  const start = await ask<Stats>(server, "stats");
  let nextKey = 0;

  const measure = async (): Promise<{ p50: number; p99: number; failures: number }> => {
    const times: number[] = [];
    let failures = 0;
    for (let i = 0; i < gets; i++) {
      const key = `k${nextKey++ % KEYS}`;
      const t0 = performance.now();
      const value = await client.getData(key, false, 5000);
      times.push(performance.now() - t0);
      if (value === null) failures++;
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 50), p99: percentile(times, 99), failures };
  };

  const phase = async (name: string, kind?: string, count = 20): Promise<FloodPhase> => {
    progress(`  ${name}...`);
    const before = await ask<Stats>(server, "stats");
    drops = [];
    const t0 = performance.now();
    let newClientMs: number | undefined;
    if (kind) {
      await ask(attacker, "start", { kind, port, count });
      await new Promise((r) => setTimeout(r, 500)); // let the flood build up
    }
    if (kind === "handshakes" || kind === "slots") {
      const fresh = new ToolDb({ topic: "flood", peers, handshakeTimeout: 30_000 });
      const t0 = performance.now();
      await fresh.ready;
      newClientMs = (await connected(fresh, 10_000)) ? performance.now() - t0 : Infinity;
      await fresh.close();
    }
    const latency = await measure();
    const during = await ask<Stats>(server, "stats");
    const stop = kind ? await ask<{ type: string; sent: number; reconnects: number; bytesIn?: number }>(attacker, "stop") : { sent: 0, reconnects: 0, bytesIn: 0 };
    const seconds = (performance.now() - t0) / 1000;
    const after = await ask<Stats>(server, "stats");
    const refusals = diff(after.refusals, before.refusals);
    return { name, ...latency, drops, sent: stop.sent, reconnects: stop.reconnects, refusals, after, during, newClientMs, attackerBytes: stop.bytesIn ?? 0, seconds };
  };

  const baseline = await phase("no flood");
  const only = process.env.BENCH_FLOOD_ONLY;
  const floods: FloodPhase[] = [];
  for (const [name, kind, count] of [
    ["valid signed puts from 20 peers", "puts", 20],
    ["gets (half for missing keys) from 20 peers", "gets", 20],
    ["subscriptions from 20 peers", "subscriptions", 20],
    ["2,000 unfinished handshakes from 100 addresses", "handshakes", 2000],
    ["server sync copying the store under a fresh identity per round, one address", "sync-abuse", 1],
    ["1,100 idle sessions from 40 addresses filling the slots", "slots", 1100],
    ["100 peers asking for a 900 KB record and never reading", "never-reading", 100],
  ] as const) {
    if (!only || only === kind) floods.push(await phase(name, kind, count));
  }
  const end = await ask<Stats>(server, "stats");
  await new Promise((r) => setTimeout(r, Number(process.env.BENCH_FLOOD_SETTLE_MS ?? 30_000)));
  const settled = await ask<Stats>(server, "stats");
  await client.close();
  attacker.send({ type: "exit" });
  server.send({ type: "stop" });
  await Promise.all([server, attacker].map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once("exit", r)))));
  return { gets, baseline, floods, rssStart: start.rss, rssEnd: end.rss, rssSettled: settled.rss };
}

export function printFloodFigures(f: FloodFigures, print: (line: string) => void): void {
  const b = f.baseline;
  print(`legitimate client, ${f.gets} gets one at a time, no flood: p50 ${fmt(b.p50, 2)} ms, p99 ${fmt(b.p99, 2)} ms`);
  for (const p of f.floods) {
    const codes = Object.entries(p.refusals).map(([c, n]) => `${c} ${n.toLocaleString("en-US")}`).join(", ") || "none";
    print(`during ${p.name}: p50 ${fmt(p.p50, 2)} ms, p99 ${fmt(p.p99, 2)} ms (p99 ${fmt(p.p99 / b.p99, 1)}× the no-flood p99), ${p.failures} failed gets; server event-loop delay p99 ${fmt(p.after.lagMs.p99, 0)} ms, max ${fmt(p.after.lagMs.max, 0)} ms`);
    if (p.drops.length > 0) print(`    the client lost its link ${p.drops.length} time(s): ${[...new Set(p.drops)].join("; ")}`);
    print(`    flood: ${p.sent.toLocaleString("en-US")} frames/sockets sent, ${p.reconnects} reconnects after drops; server refused: ${codes}`);
    if (p.newClientMs !== undefined) print(`    a new client linked during the flood in ${fmt(p.newClientMs, 0)} ms; links held ${p.during.gate.verified}, in handshake after it: ${p.after.gate.unverified}`);
    // A phase shorter than a minute (the budget ran out, or the peers were dropped) is given as a total, not extrapolated.
    if (p.attackerBytes > 0) print(`    the attacker received ${mib(p.attackerBytes)} in ${fmt(p.seconds, 0)} s${p.seconds >= 60 ? `: ${mib((p.attackerBytes / p.seconds) * 60)} per minute` : " in all"}`);
    print(`    server while flooded: RSS ${mib(p.during.rss)}, JS heap ${mib(p.during.heap)}, queued to send ${mib(p.during.queued)}`);
  }
  print(`server RSS: at start ${mib(f.rssStart)}, after the floods ${mib(f.rssEnd)} (${fmt(f.rssEnd / f.rssStart, 2)}×), 30 s after the last attackers left ${mib(f.rssSettled)} (${fmt(f.rssSettled / f.rssStart, 2)}× the start)`);
}
