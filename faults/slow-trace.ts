/**
 * Why a checkpoint (or the final convergence) was slow: while the campaign
 * waits for every write to be on every server it notes, from its own dumps,
 * when each write missing at the first look arrived on each server, and at
 * 1 s, 3 s and 10 s after every fault healed it asks every worker for its
 * state (faults/worker-diag.ts): links, reconciliation runs, push holds,
 * outbox, recent debug log. A wait over SLOW_MS prints it all, compact
 * (counts and the first few examples). The asks go out without holding up
 * the polls, and none goes out before the first mark: a fast checkpoint
 * runs as before.
 */
import { type CampaignLog, type LoggedWrite, covers } from "./campaign-log.js";
import type { Cluster } from "./cluster.js";
import type { PendingReport, WorkerDiag } from "./protocol.js";

/** A wait slower than this (ms after every fault healed) prints its trace. */
export const SLOW_MS = 3000;
/** When (ms after every fault healed) the trace looks at what is missing where, and asks the workers. */
const MARKS = [1000, 3000, 10_000];
const EXAMPLES = 4;
const LOG_TAIL = 25;
/** Log lines from this long before the heal. */
const LOG_BEFORE_MS = 5000;
const DIAG_TIMEOUT_MS = 5000;

/** A write missing on one server at the first look, and when it arrived there (ms after the heal). */
interface Gap {
  w: LoggedWrite;
  server: number;
  arrived?: number;
}

interface Snapshot {
  at: number;
  gaps: Gap[];
  divergent: number;
  unreachable: string[];
  diags: Promise<Array<WorkerDiag | undefined>>;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const short = (h: string) => h.slice(0, 8);

export class SlowTrace {
  private gaps: Gap[] | undefined;
  private firstAt = 0;
  private mark = 0;
  private readonly snapshots: Snapshot[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly campaignLog: CampaignLog,
    private readonly writes: readonly LoggedWrite[],
    private readonly healedAt: number,
    private readonly slowMs = SLOW_MS,
  ) {}

  /** One check of the wait (`startedAt`: when its dumps were asked for): notes arrivals; at a mark passed, a snapshot. */
  observe(check: { converged: boolean; dumps: Array<Map<string, [string, number]> | undefined>; divergent: number; unreachable: string[] }, startedAt: number): void {
    const at = startedAt - this.healedAt;
    const { dumps } = check;
    if (!this.gaps) {
      if (check.converged) return;
      this.firstAt = at;
      this.gaps = [];
      for (const w of this.writes) dumps.forEach((d, server) => d && !covers(d.get(w.key), w) && this.gaps!.push({ w, server }));
    } else {
      for (const g of this.gaps) {
        const d = dumps[g.server];
        if (g.arrived === undefined && d && covers(d.get(g.w.key), g.w)) g.arrived = at;
      }
    }
    if (check.converged || this.mark >= MARKS.length || at < MARKS[this.mark]!) return;
    while (this.mark < MARKS.length && at >= MARKS[this.mark]!) this.mark++;
    const gaps = this.gaps.filter((g) => g.arrived === undefined);
    this.snapshots.push({ at, gaps, divergent: check.divergent, unreachable: check.unreachable, diags: this.ask() });
  }

  private ask(): Promise<Array<WorkerDiag | undefined>> {
    return Promise.all(this.cluster.workers.map((w) => w.ask({ type: "diag" }, "diag", DIAG_TIMEOUT_MS).then((r) => r.state, () => undefined)));
  }

  /** The trace, when the wait took over `slowMs` (or did not end); "" otherwise. */
  async report(title: string, ms: number, converged: boolean): Promise<string> {
    if (converged && ms <= this.slowMs) return "";
    const names = this.cluster.workers.map((w) => w.name);
    const servers = this.cluster.servers.length;
    const gaps = this.gaps ?? [];
    const out = [`slow: ${title}: ${converged ? "every write on every server" : "NOT converged"} ${ms} ms after every fault healed; first look at ${secs(this.firstAt)}: ${new Set(gaps.map((g) => g.w)).size} writes missing`];
    for (let server = 0; server < servers; server++) {
      const mine = gaps.filter((g) => g.server === server);
      if (mine.length === 0) continue;
      const by = (mark: number) => mine.filter((g) => g.arrived !== undefined && g.arrived <= mark).length;
      const arrived = mine.filter((g) => g.arrived !== undefined).sort((a, b) => a.arrived! - b.arrived!);
      const last = arrived[arrived.length - 1];
      const never = mine.length - arrived.length;
      out.push(`  arrivals on ${names[server]}: ${mine.length} missing at the first look; arrived ${MARKS.map((m) => `${by(m)} by ${secs(m)}`).join(", ")}${last ? `; last at ${secs(last.arrived!)} (${this.describe(last.w)})` : ""}${never ? `; ${never} never` : ""}`);
    }
    const after = this.ask();
    const writers = new Set<number>();
    for (const snap of this.snapshots) out.push(...(await this.snapshot(snap, writers)));
    const final = await after;
    const lagging = new Set([...gaps.map((g) => g.server), ...writers]);
    for (const i of [...lagging].sort()) out.push(...this.logTail(names[i]!, final[i]));
    return out.join("\n");
  }

  private describe(w: LoggedWrite): string {
    const at = this.campaignLog.startedAt + w.at - this.healedAt;
    const when = at < 0 ? `${secs(-at)} before the heal` : `${secs(at)} after the heal`;
    return `${w.client} ${w.key} ${short(w.h)} t ${w.t}, ${w.acked ? "acked" : "ack timed out"} ${when}${w.by.length ? ` by ${w.by.join(", ")}` : ""}`;
  }

  private async snapshot(snap: Snapshot, writers: Set<number>): Promise<string[]> {
    const diags = await snap.diags;
    const names = this.cluster.workers.map((w) => w.name);
    const servers = this.cluster.servers.length;
    const byWrite = new Map<LoggedWrite, number[]>();
    for (const g of snap.gaps) byWrite.set(g.w, [...(byWrite.get(g.w) ?? []), g.server]);
    const outboxOf = (w: LoggedWrite): PendingReport | undefined => {
      const i = names.indexOf(w.client);
      return diags[i]?.outbox.find((p) => p.h === w.h);
    };
    const count = (items: string[]) => [...new Map(items.map((n) => [n, items.filter((m) => m === n).length]))].map(([n, c]) => `${n} ${c}`).join(", ");
    const inOutbox = [...byWrite.keys()].map(outboxOf).filter((p) => p !== undefined);
    const acked = [...byWrite.keys()].filter((w) => w.acked).length;
    const lines = [
      `  at ${secs(snap.at)}: ${byWrite.size} writes missing (${acked} acked, ${byWrite.size - acked} ack timed out): lacking on ${count(snap.gaps.map((g) => names[g.server]!)) || "none"}; writers ${count([...byWrite.keys()].map((w) => w.client)) || "none"}; still in the writer's outbox ${inOutbox.length} (provisional ${inOutbox.filter((p) => p.provisional).length})${snap.divergent ? `; ${snap.divergent} keys differ` : ""}${snap.unreachable.length ? `; no dump from ${snap.unreachable.join(", ")}` : ""}`,
    ];
    for (const [w, lacks] of [...byWrite].slice(0, EXAMPLES)) {
      const has = names.slice(0, servers).filter((_, i) => !lacks.includes(i));
      const p = outboxOf(w);
      const outbox = p ? `in the outbox (confirmed by ${this.named(p.confirmedBy)}, waiting on ${this.named(p.waitingOn)}, tries ${p.tries}${p.provisional ? ", provisional" : ""}${p.held ? ", held" : ""})` : "not in the outbox";
      lines.push(`    ${this.describe(w)}: lacks ${lacks.map((i) => names[i]).join(", ")}; has ${has.join(", ") || "none"}; ${outbox}`);
      if (p) writers.add(names.indexOf(w.client));
    }
    if (byWrite.size > EXAMPLES) lines.push(`    ... ${byWrite.size - EXAMPLES} more`);
    diags.forEach((d, i) => lines.push(`    ${names[i]}: ${d ? this.state(d) : "no answer"}`));
    return lines;
  }

  private named(ids: string[]): string {
    return ids.map((id) => this.campaignLog.name(id)).join(", ") || "none";
  }

  private state(d: WorkerDiag): string {
    const links = d.links.map((l) => `${this.campaignLog.name(l.id)}${l.server ? ` ${l.out ? "out" : "in"}${l.rbsr ? "" : " unproven"}` : ""}${l.pushHeldMs > 0 ? ` pushes held ${secs(l.pushHeldMs)}` : ""}`);
    const parts = [`links ${links.join(", ") || "none"}`];
    const s = d.sync;
    if (s) parts.push(`sync running ${s.running}, waiting ${s.waiting}; runs ended: changes ${s.runs.changes}, range ${s.runs.range}, copy ${s.runs.copy}, incomplete ${s.runs.incomplete}`);
    if (!s) parts.push(`outbox ${d.outbox.length} (provisional ${d.outbox.filter((p) => p.provisional).length})`);
    return parts.join("; ");
  }

  private logTail(name: string, d: WorkerDiag | undefined): string[] {
    if (!d) return [`  ${name}'s log: no answer`];
    const lines = d.log.filter(([at]) => at >= this.healedAt - LOG_BEFORE_MS);
    const tail = lines.slice(-LOG_TAIL).map(([at, text]) => `    ${at >= this.healedAt ? "+" : ""}${secs(at - this.healedAt)} ${this.campaignLog.withNames(text)}`);
    return [`  ${name}'s log from ${secs(LOG_BEFORE_MS)} before the heal (${lines.length} lines, the last ${tail.length}):`, ...tail];
  }
}
