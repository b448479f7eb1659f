/**
 * The fault campaign's own log: every fault (what, on whom, when injected
 * and healed) and every write the clients reported (when it was
 * acknowledged, by which servers), so that a failed campaign says why:
 * which write is missing where, what that server holds instead, which
 * writes stayed in an outbox and on which links they waited, and what the
 * faults just before were.
 */
import type { PendingReport } from "./protocol.js";

export interface LoggedWrite {
  client: string;
  key: string;
  h: string;
  t: number;
  /** Campaign time (ms) the client reported it: acknowledged, or its acknowledgement timed out. */
  at: number;
  acked: boolean;
  /** Servers (names) whose confirmation the client had when it reported. */
  by: string[];
}

interface LoggedFault {
  kind: string;
  target: string;
  at: number;
  healedAt?: number;
}

/** What one server stores: key -> [hash, timestamp]. */
export type ServerDump = Map<string, [string, number]>;

/** True when the stored record is the write or wins over it (last writer wins, hash tie-break). */
export function covers(stored: [string, number] | undefined, w: { h: string; t: number }): boolean {
  if (!stored) return false;
  const [h, t] = stored;
  return t > w.t || (t === w.t && h >= w.h);
}

/** Lines per section of the failure report at most. */
const MAX_LINES = 25;

export class CampaignLog {
  readonly writes: LoggedWrite[] = [];
  private readonly faults: LoggedFault[] = [];
  private readonly names = new Map<string, string>();
  /** Wall clock (ms) when the campaign began: campaign times are counted from it. */
  readonly startedAt = Date.now();

  /** Campaign time now (ms). */
  now(): number {
    return Date.now() - this.startedAt;
  }

  /** A worker's node id (client id) and its name, to show servers by name. */
  named(id: string, name: string): void {
    this.names.set(id, name);
  }

  name(id: string): string {
    return this.names.get(id) ?? id;
  }

  /** `text` with every worker's node id replaced by its name. */
  withNames(text: string): string {
    for (const [id, name] of this.names) text = text.split(id).join(name);
    return text;
  }

  write(w: Omit<LoggedWrite, "at" | "by"> & { by: string[] }): void {
    this.writes.push({ ...w, at: this.now(), by: w.by.map((id) => this.name(id)) });
  }

  /** Notes a fault injected now; returns the function that notes it healed. */
  fault(kind: string, target: string): () => void {
    const fault: LoggedFault = { kind, target, at: this.now() };
    this.faults.push(fault);
    return () => void (fault.healedAt = this.now());
  }

  /** The fault healed last ("kill-server s1"), or "" when none has healed. */
  lastHealed(): string {
    let last: LoggedFault | undefined;
    for (const f of this.faults) if (f.healedAt !== undefined && (last === undefined || f.healedAt >= last.healedAt!)) last = f;
    return last ? `${last.kind} ${last.target}` : "";
  }

  /**
   * Why the campaign failed, from the servers' final dumps (`names[i]` is the
   * server of `dumps[i]`) and what the clients' outboxes still held; only
   * the first `writesUpTo` writes are looked for.
   */
  report(names: string[], dumps: Array<ServerDump | undefined>, pending: Array<{ client: string; writes: PendingReport[] }>, extra: string[] = [], writesUpTo = Infinity): string {
    const out: string[] = [`campaign log: why it failed (times since the campaign started)`, ...extra.map((l) => `  ${l}`)];
    const holds = (d: ServerDump, key: string) => {
      const r = d.get(key);
      return r ? `holds ${r[0].slice(0, 8)} t ${r[1]}` : "holds nothing";
    };
    const section = (title: string, lines: string[]) => {
      if (lines.length === 0) return;
      out.push(`  ${title} (${lines.length}):`, ...lines.slice(0, MAX_LINES).map((l) => `    ${l}`));
      if (lines.length > MAX_LINES) out.push(`    ... ${lines.length - MAX_LINES} more`);
    };
    for (const acked of [true, false]) {
      const missing = this.writes.slice(0, writesUpTo).flatMap((w) => {
        if (w.acked !== acked) return [];
        const where = dumps.flatMap((d, i) => (d === undefined || covers(d.get(w.key), w) ? [] : [`${names[i]} (${holds(d, w.key)})`]));
        if (where.length === 0) return [];
        const how = acked ? `acknowledged ${secs(w.at)} by ${w.by.join(", ") || "?"}` : `acknowledgement timed out ${secs(w.at)}${w.by.length ? ` (confirmed by ${w.by.join(", ")})` : ""}`;
        return [`${w.client} ${w.key} ${w.h.slice(0, 8)} t ${w.t}: ${how}; missing on ${where.join(", ")}`];
      });
      section(acked ? "acknowledged writes missing on a server" : "writes whose acknowledgement timed out, missing on a server", missing);
    }
    section(
      "writes left in client outboxes",
      pending.flatMap(({ client, writes }) =>
        writes.map((p) => {
          const on = p.waitingOn.map((id) => this.name(id)).join(", ") || "no link";
          const by = p.confirmedBy.map((id) => this.name(id)).join(", ") || "none";
          return `${client} ${p.key} ${p.h.slice(0, 8)}: needs ${p.need}, confirmed by ${by}, waiting on ${on}, tries ${p.tries}, refusals ${p.refusals}${p.held ? ", held" : ""}${p.suspect ? ", suspect" : ""}`;
        }),
      ),
    );
    // Between faults writes are in flight: records may differ there.
    if (writesUpTo === Infinity) {
      const answered = dumps.flatMap((d, i) => (d === undefined ? [] : [{ d, name: names[i]! }]));
      const keys = new Set(answered.flatMap(({ d }) => [...d.keys()]));
      section(
        "keys whose records differ between servers",
        [...keys].filter((k) => new Set(answered.map(({ d }) => d.get(k)?.[0])).size > 1).map((k) => `${k}: ${answered.map(({ d, name }) => `${name} ${holds(d, k)}`).join("; ")}`),
      );
    }
    const last = this.faults.slice(-15).map((f) => `${secs(f.at)} ${f.kind} ${f.target}${f.healedAt === undefined ? "" : `, healed ${secs(f.healedAt)}`}`);
    section(`the last faults (of ${this.faults.length})`, last);
    return out.join("\n");
  }
}

function secs(ms: number): string {
  return `+${(ms / 1000).toFixed(1)} s`;
}
