/**
 * The fault campaign: servers and clients as separate processes on
 * loopback, faults injected from a seeded schedule while clients write with
 * acknowledged puts, then a check that nothing acknowledged was lost and
 * that every server holds the same record per key. Every CHECKPOINT_EVERY
 * faults it also waits for the faults so far to heal and times how long
 * the writes made until then take to reach every server, with the clients
 * still writing. It only looks at what the servers store, so it holds
 * whatever mechanism makes them converge.
 */
import { seededRandom } from "../src/base/random.js";
import { CampaignLog } from "./campaign-log.js";
import { Cluster, type Worker } from "./cluster.js";
import type { PendingReport, WorkerReport } from "./protocol.js";
import { type Checkpoint, checkServers, checkUntil, checkpoint } from "./server-check.js";
import { SlowTrace } from "./slow-trace.js";

export interface CampaignOptions {
  faults: number;
  seed: number;
  servers?: number;
  clients?: number;
  /** Pause between two injections (ms), drawn in [min, max]. */
  gapMs?: [number, number];
  /** How long a fault lasts before it is healed (ms), drawn in [min, max]. */
  faultMs?: [number, number];
  /** Bound on reaching convergence after the last fault healed. */
  convergeTimeoutMs?: number;
  /** Bound on reaching every server at a checkpoint between faults (default 20 s). */
  checkpointTimeoutMs?: number;
  /** A checkpoint (or the final convergence) slower than this (ms) prints its trace (faults/slow-trace.ts; default 3 s). */
  slowMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export type FaultKind = "kill-server" | "blackout" | "pause-server" | "blackhole-link" | "bootstrap-lost" | "clock-skew" | "kill-client";

export interface CampaignResult {
  seed: number;
  faultsInjected: number;
  byKind: Record<FaultKind, number>;
  writesAcknowledged: number;
  writesUnacknowledged: number;
  /** Of those, writes missing on some server at the end (they were in the local store and the outbox: should be 0). */
  unacknowledgedLost: number;
  writesLost: number;
  lostExamples: string[];
  /** Writes still waiting in a client's outbox after the clients stopped writing (should be 0: every write reaches a server). */
  writesUnconfirmed: number;
  converged: boolean;
  divergentKeys: number;
  /** From the last fault healed to every client's outbox empty (or the quiet period over). */
  outboxesMs: number;
  /** From the last fault healed to every server holding every acknowledged write and the same records. */
  convergeMs: number;
  /** Between faults: the writes so far on every server, timed from the heal of every fault so far. */
  checkpoints: Checkpoint[];
  crashes: string[];
  durationMs: number;
  /** The campaign's own log of why it failed (empty when it passed). */
  failureLog: string;
}

/** True when nothing was lost, nothing stayed in an outbox, the servers converged and nothing crashed. */
export function passed(r: CampaignResult): boolean {
  return r.writesLost === 0 && r.unacknowledgedLost === 0 && r.writesUnconfirmed === 0 && r.converged && r.checkpoints.every((c) => c.converged) && r.crashes.length === 0;
}

/** Largest clock skew injected (ms): within the 30 s a record or peer record may be ahead, for any pair of nodes. */
const MAX_SKEW_MS = 12_000;
const BLACKOUT_EVERY = 20;
/** Faults between two checkpoints (a checkpoint falls after a blackout has healed). */
const CHECKPOINT_EVERY = 25;
const CHECKPOINT_TIMEOUT_MS = 20_000;
/** Servers that may be killed or paused at the same time (except in a blackout). */
const MAX_SERVERS_DOWN = 2;


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const random = seededRandom(options.seed);
  const between = ([min, max]: [number, number]) => Math.round(min + random() * (max - min));
  const pick = <T>(items: T[]): T | undefined => (items.length === 0 ? undefined : items[Math.floor(random() * items.length)]);

  const campaignLog = new CampaignLog();
  const onReport = (w: Worker, report: WorkerReport) => {
    if (report.type === "ready") campaignLog.named(report.id, w.name);
    else if (report.type === "acked" || report.type === "unacked") {
      campaignLog.write({ client: w.name, key: report.key, h: report.h, t: report.t, acked: report.type === "acked", by: report.by });
    }
  };
  const acked = () => campaignLog.writes.filter((w) => w.acked).length;
  const cluster = new Cluster({
    servers: options.servers ?? 3,
    clients: options.clients ?? 2,
    heartbeatMs: 500,
    writeEveryMs: 40,
    ackTimeoutMs: 2000,
    onReport,
  });
  const byKind: Record<FaultKind, number> = { "kill-server": 0, blackout: 0, "pause-server": 0, "blackhole-link": 0, "bootstrap-lost": 0, "clock-skew": 0, "kill-client": 0 };
  const heals: Array<Promise<void>> = [];
  let lastHealed = Date.now();
  let noteHealed: () => void = () => undefined;
  const healAfter = (ms: number, heal: () => Promise<void> | void, release: () => void) => {
    const healed = noteHealed;
    heals.push(
      sleep(ms)
        .then(heal)
        .catch((err: unknown) => void cluster.crashes.push(`healing failed: ${String(err)}`))
        .finally(() => {
          release();
          healed();
          lastHealed = Date.now();
        }),
    );
  };
  /** Logs the fault injected now on `target`; the next healAfter notes its healing. */
  const note = (kind: FaultKind, target: string) => void (noteHealed = campaignLog.fault(kind, target));

  /** Injects one fault of `kind` if a target is free; false when none is. */
  const inject = async (kind: FaultKind): Promise<boolean> => {
    const duration = between(options.faultMs ?? [300, 2500]);
    const upServers = cluster.servers.filter((s) => !s.faulted && s.state === "up");
    const serversDown = cluster.servers.filter((s) => s.state !== "up").length;
    switch (kind) {
      case "kill-server":
      case "pause-server": {
        const target = serversDown < MAX_SERVERS_DOWN ? pick(upServers) : undefined;
        if (!target) return false;
        target.faulted = true;
        note(kind, target.name);
        if (kind === "kill-server") {
          await target.kill9();
          healAfter(duration, () => target.start(), () => (target.faulted = false));
        } else {
          target.pause();
          healAfter(duration, () => target.resume(), () => (target.faulted = false));
        }
        return true;
      }
      case "blackout": {
        // Every server killed at once (the issue's data-loss case): clients write offline meanwhile.
        // It waits (bounded) for the server faults in progress to heal.
        for (let i = 0; i < 300 && cluster.servers.some((s) => s.faulted || s.state !== "up"); i++) await sleep(100);
        if (cluster.servers.some((s) => s.faulted || s.state !== "up")) return false;
        for (const server of cluster.servers) server.faulted = true;
        note(kind, "every server");
        await Promise.all(cluster.servers.map((server) => server.kill9()));
        const restart = async () => {
          for (const server of cluster.servers) await server.start();
        };
        healAfter(duration, restart, () => cluster.servers.forEach((server) => (server.faulted = false)));
        return true;
      }
      case "blackhole-link": {
        const proxies = cluster.proxies.filter((p) => p.openLinks > 0);
        const proxy = pick(proxies);
        const restore = proxy?.blackhole(Math.floor(random() * 64));
        if (!restore) return false;
        note(kind, `a link to ${cluster.servers[cluster.proxies.indexOf(proxy!)]!.name}`);
        healAfter(duration, restore, () => undefined);
        return true;
      }
      case "bootstrap-lost": {
        const up = cluster.bootstraps.map((b, i) => (b.node ? i : -1)).filter((i) => i >= 0);
        if (up.length < cluster.bootstraps.length) return false; // one lost at a time
        const lost = pick(up)!;
        const restore = await cluster.loseBootstrap(lost);
        note(kind, `bootstrap ${lost}`);
        healAfter(duration, restore, () => undefined);
        return true;
      }
      case "clock-skew": {
        const target = pick(cluster.workers.filter((w) => !w.faulted && w.state === "up"));
        if (!target) return false;
        const skew = between([-MAX_SKEW_MS, MAX_SKEW_MS]);
        target.config.skewMs = skew; // kept across a restart
        target.send({ type: "skew", ms: skew });
        note(kind, `${target.name} ${skew} ms`);
        return true;
      }
      case "kill-client": {
        const target = pick(cluster.clients.filter((c) => !c.faulted && c.state === "up"));
        if (!target) return false;
        target.faulted = true;
        note(kind, target.name);
        await target.kill9();
        target.config.run++;
        healAfter(duration, () => target.start(), () => (target.faulted = false));
        return true;
      }
    }
  };

  const weights: Array<[FaultKind, number]> = [
    ["kill-server", 3],
    ["pause-server", 2],
    ["blackhole-link", 3],
    ["bootstrap-lost", 1],
    ["clock-skew", 1],
    ["kill-client", 1],
  ];
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  const drawKind = (): FaultKind => {
    let r = random() * total;
    for (const [kind, w] of weights) if ((r -= w) < 0) return kind;
    return weights[0]![0];
  };

  let injected = 0;
  let result: CampaignResult | undefined;
  const checkpoints: Checkpoint[] = [];
  try {
    await cluster.start();
    log(`cluster up: ${cluster.servers.length} servers behind proxies, ${cluster.clients.length} clients, 2 DHT bootstrap nodes (seed ${options.seed})`);
    // A crash (or a failed restart) ends the campaign early: the result fails anyway.
    for (let attempt = 0; injected < options.faults && attempt < options.faults * 20 && cluster.crashes.length === 0; attempt++) {
      await sleep(between(options.gapMs ?? [300, 900]));
      // Every BLACKOUT_EVERY-th fault is a blackout (too rare when drawn: it needs every server up).
      const kind = injected % BLACKOUT_EVERY === BLACKOUT_EVERY - 1 ? "blackout" : drawKind();
      if (!(await inject(kind))) continue;
      injected++;
      byKind[kind]++;
      if (injected % 10 === 0 || injected === options.faults) log(`faults injected: ${injected}/${options.faults}, writes acknowledged so far: ${acked()}`);
      if (injected % CHECKPOINT_EVERY === 0 && injected < options.faults) {
        await Promise.all(heals);
        const point = await checkpoint(cluster, campaignLog, injected, lastHealed, options.checkpointTimeoutMs ?? CHECKPOINT_TIMEOUT_MS, options.slowMs);
        checkpoints.push(point);
        log(`checkpoint after ${injected} faults: ${point.writes} writes ${point.converged ? `on every server ${point.ms} ms after every fault healed` : `NOT on every server after ${point.ms} ms`} (the last to heal: ${point.lastHealed})`);
        if (point.slowLog) log(point.slowLog);
      }
    }
    await Promise.all(heals);
    // Clock skew is not a fault to heal: nodes keep their skew (within the accepted window).
    log(`every fault healed; clients stop writing and wait for their outboxes`);
    const quiet = await Promise.all(
      cluster.clients.map((c) =>
        c.ask({ type: "quiesce", ms: 30_000 }, "quiet", 40_000).catch((err: unknown) => {
          cluster.crashes.push(`${c.name} gave no outbox state: ${String(err)}`);
          return { outbox: 0, pending: [] as PendingReport[] };
        }),
      ),
    );
    const pendingOutbox = quiet.reduce((sum, q) => sum + q.outbox, 0);
    const outboxesMs = Date.now() - lastHealed;
    if (pendingOutbox > 0) log(`clients still hold ${pendingOutbox} unconfirmed writes`);

    const deadline = Date.now() + (options.convergeTimeoutMs ?? 60_000);
    const trace = new SlowTrace(cluster, campaignLog, campaignLog.writes.slice(), lastHealed, options.slowMs);
    const check = await checkUntil(deadline, () => checkServers(cluster, campaignLog.writes), trace);
    const convergeMs = Date.now() - lastHealed;
    const slowLog = await trace.report("the final convergence", convergeMs, check.converged);
    if (slowLog) log(slowLog);
    for (const name of check.unreachable) cluster.crashes.push(`${name} did not answer the final check`);
    const unacked = campaignLog.writes.length - acked();
    result = {
      seed: options.seed,
      faultsInjected: injected,
      byKind,
      writesAcknowledged: acked(),
      writesUnacknowledged: unacked,
      unacknowledgedLost: check.lostUnacked,
      writesLost: check.lost,
      lostExamples: check.examples,
      writesUnconfirmed: pendingOutbox,
      converged: check.converged,
      divergentKeys: check.divergent,
      outboxesMs,
      convergeMs,
      checkpoints,
      crashes: cluster.crashes,
      durationMs: 0,
      failureLog: "",
    };
    if (!passed(result)) {
      const pending = quiet.map((q, i) => ({ client: cluster.clients[i]!.name, writes: q.pending }));
      const names = cluster.servers.map((srv) => srv.name);
      const final = campaignLog.report(names, check.dumps, pending, [`outboxes ${pendingOutbox === 0 ? "empty" : "not empty"} ${outboxesMs} ms after the last fault healed`, ...check.unreachable.map((n) => `${n}: no final dump`)]);
      result.failureLog = [...checkpoints.map((c) => c.failureLog).filter((l) => l !== ""), final].join("\n");
    }
  } finally {
    await cluster.stop().catch((err: unknown) => void cluster.crashes.push(`stopping failed: ${String(err)}`));
  }
  result.durationMs = Date.now() - started;
  return result;
}

/** The figures, one per line, for humans. */
export function formatResult(r: CampaignResult): string {
  const kinds = Object.entries(r.byKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  return [
    `seed: ${r.seed}`,
    `faults injected: ${r.faultsInjected} (${kinds})`,
    `writes acknowledged: ${r.writesAcknowledged} (plus ${r.writesUnacknowledged} acknowledged puts that timed out, left to the outbox; ${r.unacknowledgedLost} of them missing on a server at the end)`,
    `writes lost: ${r.writesLost}${r.lostExamples.length > 0 ? ` e.g. ${r.lostExamples.join("; ")}` : ""}`,
    `writes still unconfirmed in client outboxes at the end: ${r.writesUnconfirmed}`,
    `servers converged (every write on every server, same record per key): ${r.converged ? "yes" : `NO (${r.divergentKeys} keys differ between servers)`}`,
    `time to converge after the last fault healed: ${r.convergeMs} ms (client outboxes ${r.writesUnconfirmed === 0 ? "empty" : "still not empty"} after ${r.outboxesMs} ms)`,
    checkpointLine(r.checkpoints),
    `processes crashed (not killed by the harness): ${r.crashes.length}${r.crashes.length > 0 ? `\n  ${r.crashes.join("\n  ")}` : ""}`,
    `campaign took ${(r.durationMs / 1000).toFixed(1)} s`,
    ...(r.failureLog ? [r.failureLog] : []),
  ].join("\n");
}

/** The checkpoints in one line: how many converged, and how long they took after every fault healed. */
export function checkpointLine(points: readonly Checkpoint[]): string {
  if (points.length === 0) return `checkpoints between faults: none (one comes every ${CHECKPOINT_EVERY} faults, not after the last)`;
  const ms = points.map((p) => p.ms).sort((a, b) => a - b);
  const failed = points.filter((p) => !p.converged).length;
  const median = ms[Math.floor(ms.length / 2)]!;
  const slow = points.filter((p) => p.slowLog !== "").map((p) => `after ${p.afterFaults} faults ${p.ms} ms`);
  return `checkpoints between faults (every write so far on every server, timed from every fault healed, clients still writing): ${points.length - failed}/${points.length} converged; median ${median} ms, worst ${ms[ms.length - 1]} ms${slow.length ? `; traced as slow (above): ${slow.join(", ")}` : ""}`;
}
