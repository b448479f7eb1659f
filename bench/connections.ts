/**
 * Idle connections on one server (issue 10): memory each idle verified
 * ToolDb client costs the server, beside a raw `ws` connection held by a
 * plain `ws` server (same ws options, same Node flags) measured in the same
 * run, and handshakes/s beside raw ws connections/s. Each measurement is a
 * fresh server process; memory is sampled after full GCs before and after
 * the clients connect, the clients living in this process. The first
 * `WARM_LINKS` links connect before the first sample on both servers: they
 * pay one-time costs (JIT code, lazily built tables, the allocator's first
 * arenas) that are no client's.
 */
import { spawnSync } from "node:child_process";
import { type Memory, type ServerKind, closeAll, connect, identities, memory, startServer, stop } from "./one-server.js";
import { fmt, median } from "./stats.js";

/**
 * Both servers' young generation is capped (1 MiB semi-spaces): by default
 * it grows to tens of MiB with the allocation rate of the handshakes, a
 * fixed cost (not held per client) that would swamp the figure at 1,000
 * clients, and more for ToolDb, whose handshake allocates more.
 */
export const CONNECTION_SERVER_FLAGS = ["--max-semi-space-size=1"];
export const WARM_LINKS = 100;

export interface ConnectionFigures {
  clients: number;
  /** Server RSS and JS heap growth per verified client (after full GCs). */
  perClient: number;
  perClientHeap: number;
  /** The same for a raw ws connection. */
  perRawConnection: number;
  perRawConnectionHeap: number;
  /** The same for a ws server that does each handshake's work (verify the ping, send a signed pong) and keeps nothing. */
  perHandshakeOnly: number;
  perHandshakeOnlyHeap: number;
  /** Connect + signed handshake until the pong, 200 in parallel. */
  handshakesPerSecond: number;
  /** Raw ws connections opened per second, 200 in parallel. */
  rawConnectionsPerSecond: number;
}

/** The soft limit on open files of this process (its children inherit it). */
export function openFileLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return r.stdout.trim() === "unlimited" ? Infinity : Number.isFinite(n) ? n : 0;
}

/** Per link measured (`pings` after the first WARM_LINKS): server memory growth, and links made per second. */
async function held(kind: ServerKind, pings: Array<string | undefined>, progress?: (line: string) => void): Promise<{ per: Memory; perSecond: number }> {
  const server = await startServer(kind, CONNECTION_SERVER_FLAGS);
  const warm = await connect(server.port, pings.slice(0, WARM_LINKS));
  const before = await memory(server);
  const measured = pings.slice(WARM_LINKS);
  const { sockets, seconds } = await connect(server.port, measured, 200, progress);
  const after = await memory(server);
  await closeAll([...warm.sockets, ...sockets]);
  await stop(server);
  const n = measured.length;
  return { per: { rss: (after.rss - before.rss) / n, heap: (after.heap - before.heap) / n }, perSecond: n / seconds };
}

/** `rounds` measurements of each kind, alternating, with the same signed pings (each round is a new server process). */
export async function connectionBenchmark(clients: number, rounds: number, progress?: (line: string) => void): Promise<ConnectionFigures[]> {
  const pings = await identities(WARM_LINKS + clients, progress);
  const out: ConnectionFigures[] = [];
  for (let round = 0; round < rounds; round++) {
    const verified = await held("tooldb", pings, progress);
    const plain = await held("raw", new Array<undefined>(WARM_LINKS + clients).fill(undefined), progress);
    const handshakeOnly = await held("raw-verify", pings, progress);
    out.push({
      clients,
      perClient: verified.per.rss,
      perClientHeap: verified.per.heap,
      perRawConnection: plain.per.rss,
      perRawConnectionHeap: plain.per.heap,
      perHandshakeOnly: handshakeOnly.per.rss,
      perHandshakeOnlyHeap: handshakeOnly.per.heap,
      handshakesPerSecond: verified.perSecond,
      rawConnectionsPerSecond: plain.perSecond,
    });
  }
  return out;
}

const kib = (bytes: number) => fmt(bytes / 1024, 1);

export function printConnectionFigures(c: ConnectionFigures, out: (line: string) => void): void {
  out(
    `${c.clients.toLocaleString()} idle clients: verified ToolDb client ${kib(c.perClient)} KiB server RSS each (JS heap ${kib(c.perClientHeap)} KiB), ` +
      `raw ws connection ${kib(c.perRawConnection)} KiB (heap ${kib(c.perRawConnectionHeap)} KiB); ` +
      `ratio ${fmt(c.perClient / c.perRawConnection, 2)} RSS, ${fmt(c.perClientHeap / c.perRawConnectionHeap, 2)} heap (aim ≤ 2); ` +
      `${fmt(c.handshakesPerSecond, 0)} handshakes/s (raw ws: ${fmt(c.rawConnectionsPerSecond, 0)} connections/s)`,
  );
  out(`  (a ws server doing the same handshake work and keeping nothing: ${kib(c.perHandshakeOnly)} KiB RSS, heap ${kib(c.perHandshakeOnlyHeap)} KiB per client)`);
}

/**
 * One line over the rounds of one size: each ratio's median and range, and
 * whether the median is within the aim. A round whose raw ws RSS grew less
 * than its own JS heap measured the allocator's slack, not the connections:
 * its RSS ratio is left out (and counted).
 */
export function printConnectionSummary(rounds: ConnectionFigures[], out: (line: string) => void): void {
  const spread = (values: number[], digits = 2) => {
    const [lo, hi] = [Math.min(...values), Math.max(...values)];
    return lo === hi ? fmt(lo, digits) : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
  };
  const ratio = (values: number[]) => {
    const m = median(values);
    return `median ${fmt(m, 2)} (${spread(values)}; ${m <= 2 ? "within" : "NOT within"} 2×)`;
  };
  const measurable = rounds.filter((c) => c.perRawConnection >= c.perRawConnectionHeap);
  const slack = rounds.length - measurable.length;
  const rss =
    measurable.length === 0
      ? `not measurable (the raw server's RSS grew less than its JS heap in every round)`
      : ratio(measurable.map((c) => c.perClient / c.perRawConnection)) + (slack ? ` over ${measurable.length} round${measurable.length === 1 ? "" : "s"} (${slack} left out: raw RSS grew less than its heap)` : "");
  const heap = rounds.map((c) => c.perClientHeap / c.perRawConnectionHeap);
  out(
    `  → ${rounds[0]!.clients.toLocaleString()} clients, ${rounds.length} rounds, ratio to a raw ws connection: RSS ${rss}; JS heap ${ratio(heap)}; ` +
      `${spread(rounds.map((c) => c.handshakesPerSecond), 0)} handshakes/s`,
  );
}
