/**
 * Discovery latency on a 50-node private bittorrent-dht network on loopback,
 * side by side in one run:
 *
 *   1. raw bittorrent-dht 11: announce on one node → first 'peer' of a
 *      lookup on another node (fresh info hash each run);
 *   2. discovery-channel 5.5.1: join(topic, port) on one channel → 'peer'
 *      on another channel that join(topic)s;
 *   3. ours: DHTServer.start() → verified connection ('peer-connect') of a
 *      DHTClient started at the same time, against the target
 *      2 × (raw median) + one plain ToolDb WebSocket handshake;
 *   4. late server: a DHTClient already running and finding nothing →
 *      DHTServer.start() → the client's verified connection, with the
 *      default discovery intervals;
 *   4b. the same once some nodes have left the network without being
 *      evicted from routing tables (as on the real DHT), so that queries
 *      to them wait for the k-rpc timeout.
 *
 * Scenarios 1–4 run interleaved on a clean network (departed benchmark
 * nodes are swept from every routing table before each scenario); 4b runs
 * last. Every DHT node has an explicit loopback bootstrap, and a UDP guard drops
 * (and reports) any datagram to a non-loopback address. Everything opened
 * by a run is closed by that run; nothing keeps the process alive.
 */
import { DISCOVERY_DEFAULTS } from "../src/entries/discovery.js";
import { createLoopbackDht, guardUdpToLoopback, type LoopbackDht } from "./dht-net.js";
import { DC_INTERVAL, dcRun, errText, handshakeRun, lateRun, oursRun, rawRun } from "./discovery-runs.js";
import { fmt, median } from "./stats.js";

export { DC_INTERVAL } from "./discovery-runs.js";

export const DHT_NODES = 50;
/** 4b: departed nodes left in the routing tables (20 % of the network). */
export const DEPARTED_NODES = 10;

export interface Series {
  /** Completed runs, ms, in run order. */
  samples: number[];
  /** Runs that timed out or failed. */
  misses: number;
  /** First failure reason, if any. */
  error?: string;
  median: number;
  min: number;
  max: number;
}

export interface DiscoveryFigures {
  nodes: number;
  runs: number;
  /** 1: announce call → first matching 'peer' of the lookup on another node. */
  raw: Series;
  /** 1, split: announce call → announce callback. */
  rawAnnounce: Series;
  /** 1, split: lookup call (after the announce callback) → first matching 'peer'. */
  rawLookup: Series;
  /** 1: runs whose first 'peer' came from the looking node's own store (it was one of the storing nodes). */
  rawLocalHits: number;
  /** 2 */
  discoveryChannel: Series;
  dcInterval: number;
  /** Plain ToolDb client: `new ToolDb({ peers: [server] })` → 'connect'. */
  handshake: Series;
  /** Same runs: client ready → 'connect' (the WebSocket + signed handshake alone). */
  handshakeAfterReady: Series;
  /** 3 */
  ours: Series;
  /** 3, split: start() → the DHTClient's first DHT report of the server. */
  oursFound: Series;
  /** 3, split: both start() resolved (stores ready, DHT joined) → 'peer-connect'. */
  oursAfterStart: Series;
  /** 2 × raw.median + handshake.median. */
  target: number;
  /** 4 */
  lateServer: LateFigures;
  /** The client's lookup period during 4 (the default fastInterval). */
  lateFastInterval: number;
  /** 4b: nodes that joined and stopped without being evicted, and their routing-table entries (all nodes). */
  departedNodes: number;
  departedEntries: number;
  /** 4b: as 4, after those nodes departed (queries to them time out). */
  lateWithDeparted: LateFigures;
  /**
   * Most routing-table entries of departed benchmark nodes found at the
   * start of a scenario, across all network nodes (cleared right after).
   */
  staleEntries: number;
  /** Most such entries left after a sweep (should be 0). */
  staleLeft: number;
  /** Non-loopback UDP destinations the guard dropped (should be empty). */
  blockedSends: string[];
  /** Wall time of the whole benchmark, s. */
  seconds: number;
}

// ---------------------------------------------------------------- collecting

/** One scenario's samples and misses. */
class Collector {
  readonly samples: number[] = [];
  misses = 0;
  error: string | undefined;

  add(ms: number): void {
    this.samples.push(ms);
  }

  miss(err: unknown): void {
    this.misses++;
    this.error ??= errText(err);
  }

  series(): Series {
    const s = this.samples;
    return {
      samples: [...s],
      misses: this.misses,
      ...(this.error !== undefined ? { error: this.error } : {}),
      median: median(s),
      min: s.length ? Math.min(...s) : NaN,
      max: s.length ? Math.max(...s) : NaN,
    };
  }
}

export interface LateFigures {
  /** DHTServer.start() → the client's 'peer-connect'. */
  connect: Series;
  /** start() → the client's first DHT report of the server. */
  found: Series;
  /** start() → the server's first announce completed (its records are stored by then). */
  announced: Series;
  /** The client's mean lookup period (completion to completion) during the run. */
  lookupPeriod: Series;
}

class LateCollector {
  private readonly connect = new Collector();
  private readonly found = new Collector();
  private readonly announced = new Collector();
  private readonly period = new Collector();

  async run(net: LoopbackDht, run: number, phase: number): Promise<void> {
    try {
      const r = await lateRun(net, run, phase);
      this.connect.add(r.total);
      if (Number.isFinite(r.found)) this.found.add(r.found);
      if (Number.isFinite(r.announced)) this.announced.add(r.announced);
      if (Number.isFinite(r.lookupPeriod)) this.period.add(r.lookupPeriod);
    } catch (err) {
      this.connect.miss(err);
    }
  }

  figures(): LateFigures {
    return { connect: this.connect.series(), found: this.found.series(), announced: this.announced.series(), lookupPeriod: this.period.series() };
  }
}

// ---------------------------------------------------------------- the benchmark

/**
 * Runs every scenario `runs` times (after one unrecorded warm-up run of the
 * quick ones), interleaved run by run so that drift affects all alike.
 */
export async function discoveryBenchmark(runs = 9): Promise<DiscoveryFigures> {
  const started = performance.now();
  const guard = guardUdpToLoopback();
  let net: LoopbackDht | undefined;
  try {
    net = await createLoopbackDht(DHT_NODES);
    const raw = new Collector();
    const rawAnnounce = new Collector();
    const rawLookup = new Collector();
    let rawLocalHits = 0;
    const dc = new Collector();
    const hs = new Collector();
    const hsAfterReady = new Collector();
    const ours = new Collector();
    const oursFound = new Collector();
    const oursAfterStart = new Collector();
    const late = new LateCollector();
    const fast = DISCOVERY_DEFAULTS.fastInterval;

    let staleEntries = 0;
    let staleLeft = 0;
    /** Every scenario starts on a clean network: no departed node left in any routing table. */
    const clean = () => {
      const { before, after } = net!.sweep();
      staleEntries = Math.max(staleEntries, before);
      staleLeft = Math.max(staleLeft, after);
    };

    for (let run = -1; run < runs; run++) {
      const record = run >= 0;
      const id = run + 1;
      clean();
      try {
        const r = await rawRun(net, id);
        if (record) {
          raw.add(r.total);
          rawAnnounce.add(r.announce);
          rawLookup.add(r.lookup);
          if (r.local) rawLocalHits++;
        }
      } catch (err) {
        if (record) raw.miss(err);
      }
      clean();
      try {
        const ms = await dcRun(net, id);
        if (record) dc.add(ms);
      } catch (err) {
        if (record) dc.miss(err);
      }
      try {
        const r = await handshakeRun(id);
        if (record) {
          hs.add(r.total);
          hsAfterReady.add(r.afterReady);
        }
      } catch (err) {
        if (record) hs.miss(err);
      }
      clean();
      try {
        const r = await oursRun(net, id);
        if (record) {
          ours.add(r.total);
          oursAfterStart.add(r.afterStart);
          if (Number.isFinite(r.found)) oursFound.add(r.found);
        }
      } catch (err) {
        if (record) ours.miss(err);
      }
      if (record) {
        clean();
        await late.run(net, id, ((run + 0.5) / runs) * fast);
      }
    }

    // 4b: the same late-server runs once departed nodes linger in routing tables, as on the real DHT.
    const lateDead = new LateCollector();
    const deadEntries = await net.addDepartedNodes(DEPARTED_NODES);
    for (let run = 0; run < runs; run++) await lateDead.run(net, runs + 1 + run, ((run + 0.5) / runs) * fast);

    const rawS = raw.series();
    const hsS = hs.series();
    return {
      nodes: DHT_NODES,
      runs,
      raw: rawS,
      rawAnnounce: rawAnnounce.series(),
      rawLookup: rawLookup.series(),
      rawLocalHits,
      discoveryChannel: dc.series(),
      dcInterval: DC_INTERVAL,
      handshake: hsS,
      handshakeAfterReady: hsAfterReady.series(),
      ours: ours.series(),
      oursFound: oursFound.series(),
      oursAfterStart: oursAfterStart.series(),
      target: 2 * rawS.median + hsS.median,
      lateServer: late.figures(),
      lateFastInterval: fast,
      departedNodes: DEPARTED_NODES,
      departedEntries: deadEntries,
      lateWithDeparted: lateDead.figures(),
      staleEntries,
      staleLeft,
      blockedSends: [...new Set(guard.blocked)],
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (net) await net.destroy();
    guard.restore();
  }
}

// ---------------------------------------------------------------- printing

function ms(n: number): string {
  return n >= 100 ? fmt(n, 0) : n >= 10 ? fmt(n, 1) : fmt(n, 2);
}

function line(s: Series, runs: number): string {
  const got = s.samples.length;
  const base = got ? `median ${ms(s.median)} ms (min ${ms(s.min)}, max ${ms(s.max)})` : "no completed run";
  const misses = s.misses ? `; ${s.misses}/${runs} runs failed: ${s.error ?? "?"}` : "";
  return `${base}${misses}`;
}

function sorted(s: Series): string {
  return [...s.samples].sort((a, b) => a - b).map((v) => fmt(v, 0)).join(", ");
}

function printLate(label: string, l: LateFigures, runs: number, print: (line: string) => void): void {
  print(`${label}: ${line(l.connect, runs)}`);
  print(`   samples, sorted: ${sorted(l.connect)} ms`);
  print(`   start -> server's first announce done: ${line(l.announced, runs)}`);
  print(`   start -> server found on the DHT: ${line(l.found, runs)}`);
  print(`   client lookup period (completion to completion): ${line(l.lookupPeriod, runs)}`);
  const met = l.connect.samples.length > 0 && l.connect.misses === 0 && l.connect.max <= 2000;
  print(`   aim <= 2000 ms: ${met ? "met by every run" : "NOT met by every run"}`);
}

export function printDiscoveryFigures(f: DiscoveryFigures, print: (line: string) => void = console.log): void {
  print(`## Discovery: ${f.nodes}-node private bittorrent-dht network on loopback, ${f.runs} runs each`);
  print(`1. raw bittorrent-dht 11, announce -> first 'peer' of a lookup on another node: ${line(f.raw, f.runs)}`);
  print(`   announce alone: ${line(f.rawAnnounce, f.runs)}; lookup alone: ${line(f.rawLookup, f.runs)}`);
  print(`   (${f.rawLocalHits}/${f.raw.samples.length} first 'peer' events came from the looking node's own store)`);
  print(`2. discovery-channel 5.5.1 (dht interval ${f.dcInterval} ms), join(topic, port) -> 'peer' on another channel: ${line(f.discoveryChannel, f.runs)}`);
  print(`   plain ToolDb handshake, new ToolDb({ peers: [server] }) -> 'connect': ${line(f.handshake, f.runs)}`);
  print(`   of which client ready -> 'connect' (WebSocket + signed handshake alone): ${line(f.handshakeAfterReady, f.runs)}`);
  print(`3. ours, DHTServer.start() -> DHTClient 'peer-connect', both started together (default intervals): ${line(f.ours, f.runs)}`);
  print(`   samples, sorted: ${sorted(f.ours)} ms`);
  print(`   start -> server found on the DHT: ${line(f.oursFound, f.runs)}`);
  print(`   both start() resolved (ToolDb init done, DHT joined) -> 'peer-connect': ${line(f.oursAfterStart, f.runs)}`);
  const met = f.ours.samples.length > 0 && f.ours.median <= f.target;
  print(`   target 2 x raw median + handshake median = ${ms(f.target)} ms: ${met ? "met" : "NOT met"} by the median`);
  printLate(`4. late server, DHTServer.start() -> already-running DHTClient 'peer-connect' (default intervals, fastInterval ${f.lateFastInterval} ms)`, f.lateServer, f.runs, print);
  printLate(
    `4b. the same after ${f.departedNodes} nodes joined and left without eviction (${f.departedEntries} routing-table entries; queries to them time out)`,
    f.lateWithDeparted,
    f.runs,
    print,
  );
  print(`departed benchmark nodes re-found in routing tables before a scenario: at most ${f.staleEntries} entries (removed; ${f.staleLeft} left)`);
  print(`non-loopback UDP sends blocked: ${f.blockedSends.length ? f.blockedSends.join(", ") : "none"}; wall time ${fmt(f.seconds, 1)} s`);
}
