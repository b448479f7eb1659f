/**
 * One simulated run: N servers and M clients on the in-memory mesh, puts
 * from random clients at a fixed rate, servers killed and started at the
 * churn rate, and the per-put figures once every put settled.
 */
import type { PeerAddress } from "../src/discovery/peer-table.js";
import type { DhtPhaseResult } from "./dht-phase.js";
import { DEFAULT_MIN_SERVER_LINKS } from "../src/peering/server-mesh.js";
import { SimMesh, type SimNode } from "./mesh.js";
import { randomSides } from "./fabric-cuts.js";
import { PutTracker, type PutSummary, type PutTrace } from "./put-tracker.js";
import { seededRandom } from "./sim-node.js";
import { shuffled } from "./stats.js";

export interface ScenarioConfig {
  servers: number;
  clients: number;
  puts: number;
  /** Puts per second of simulated time. */
  rate: number;
  /** Share of the servers replaced per simulated minute (0.2 = 20 %). */
  churn: number;
  delayMs: number;
  seed: number;
  mode: "tree" | "flood";
  /** Simulated ms after the last put during which relay and anti-entropy may finish. */
  settleMs: number;
  /** Share of the servers that crash silently per simulated minute, each replaced by a new one (0 = none). */
  crash?: number;
  /** Mean ms between a server's mesh rotations; undefined: the shipping default; 0 turns rotation and the redial of lost servers off. */
  rotateMs?: number;
  /** A partition of every node into two random halves for this many simulated ms, a third into the puts (0 = none). */
  partitionMs?: number;
}

/** What a partition did, and how long after it healed every put was on every live server. */
export interface PartitionResult {
  startedAt: number;
  healedAt: number;
  /** Puts issued while the partition lasted. */
  putsDuring: number;
  /** Puts not yet on every live server when it healed. */
  incompleteAtHeal: number;
  /** For those, ms from the heal until every live server held each (undefined: some never did by the end). */
  afterHealMs: Array<number | undefined>;
  /** Server links across the two sides when it healed, and at the end. */
  crossLinksAtHeal: number;
  crossLinksAtEnd: number;
}

export interface ScenarioResult {
  config: ScenarioConfig;
  puts: PutSummary[];
  links: number[];
  eagerLinks: number[];
  killed: number;
  joined: number;
  /** Of the servers killed, those that crashed silently. */
  crashed: number;
  partition: PartitionResult | undefined;
  /** The process's JS heap with the mesh built (after a GC) per node, bytes: an upper bound of a node's heap. */
  bytesPerNode: number;
  rssBytes: number;
  frames: number;
  bytes: number;
  /** Frames and bytes delivered while puts ran (per put, all servers and clients). */
  putFrames: number;
  putBytes: number;
  /** Per server, frames and bytes it received per put while the puts ran (mean over servers, and the busiest server). */
  serverFramesIn: { mean: number; max: number };
  serverBytesIn: { mean: number; max: number };
  simulatedMs: number;
  realMs: number;
}

const CHECK_MS = 250;

export async function runScenario(config: ScenarioConfig, dht: DhtPhaseResult, progress: (line: string) => void): Promise<ScenarioResult> {
  const realStart = performance.now();
  const random = seededRandom(config.seed);
  const mesh = new SimMesh({ topic: "sim-topic", delayMs: config.delayMs, random, serverLinks: DEFAULT_MIN_SERVER_LINKS, clientLinks: 2, db: { broadcast: { mode: config.mode } }, rotation: config.rotateMs === undefined ? undefined : { rotateIntervalMs: config.rotateMs, redialLostMs: config.rotateMs === 0 ? 0 : undefined } });
  const clock = mesh.clock;
  const tracker = new PutTracker(() => clock.now(), mesh.world.verifications);
  // What each server receives while the puts run (the mesh's cost per server).
  const received = new Map<unknown, { frames: number; bytes: number }>();
  let counting = false;
  mesh.fabric.observer = (to, frame) => {
    tracker.frame(to, frame);
    if (!counting || !to.servesLinks) return;
    const c = received.get(to) ?? { frames: 0, bytes: 0 };
    c.frames++;
    c.bytes += frame.length;
    received.set(to, c);
  };
  const label = `${config.mode} ${config.servers}s`;
  global.gc?.();

  for (let i = 0; i < config.servers; i++) {
    tracker.watchServer(await mesh.addServer(dht.candidates[i] ?? []));
    if ((i + 1) % 100 === 0 || i + 1 === config.servers) progress(`${label}: ${i + 1}/${config.servers} servers started`);
  }
  await clock.advance(5_000);
  progress(`${label}: servers linked (${mesh.fabric.frames} frames so far, simulated ${clock.now() - mesh.servers[0]!.joinedAt} ms)`);
  for (let j = 0; j < config.clients; j++) {
    // A client starts from a lookup that found servers (on a loaded box some found none: a DHTClient would look again).
    const found = dht.clientCandidates.filter((list) => list.length > 0);
    const lists = found.length > 0 ? found : dht.candidates;
    const client = await mesh.addClient(shuffled(lists[j % lists.length] ?? [], random));
    tracker.watchClient(client, () => mesh.liveServers);
  }
  await clock.advance(2_000);
  global.gc?.();
  const rssBuilt = process.memoryUsage().rss;
  const heapBuilt = process.memoryUsage().heapUsed;
  counting = true;
  const framesBefore = mesh.fabric.frames;
  const bytesBefore = mesh.fabric.bytes;

  // Churn: one server out and a fresh one in, evenly spread over each minute; crashes likewise, silently.
  const churnEveryMs = config.churn > 0 ? 60_000 / (config.churn * config.servers) : Infinity;
  const crashEveryMs = (config.crash ?? 0) > 0 ? 60_000 / (config.crash! * config.servers) : Infinity;
  const announced: PeerAddress[] = mesh.servers.map((s) => SimMesh.address(s.index));
  const completeness = dht.serverCompleteness.length > 0 ? dht.serverCompleteness.reduce((a, b) => a + b, 0) / dht.serverCompleteness.length : 1;
  let killed = 0;
  let joined = 0;
  let crashed = 0;
  const replaceOne = async (silently: boolean) => {
    const live = mesh.liveServers;
    const victim = live[Math.floor(random() * live.length)];
    if (victim) {
      void (silently ? mesh.crash(victim) : mesh.kill(victim));
      killed++;
      if (silently) crashed++;
    }
    // A new server's lookup returns a share of what was ever announced (dead ones too), as the DHT does.
    const candidates = shuffled(announced, random).slice(0, Math.max(1, Math.round(completeness * announced.length)));
    const node = await mesh.addServer(candidates);
    announced.push(SimMesh.address(node.index));
    tracker.watchServer(node);
    joined++;
  };

  // The partition: every node on a random side, nodes started later included.
  const sideOf = randomSides(random);
  const crossLinks = () => mesh.linksAcross(sideOf);
  let partition: PartitionResult | undefined;
  let healPuts: PutTrace[] = [];

  const putEveryMs = 1000 / config.rate;
  const putsStart = clock.now();
  let issued = 0;
  let nextChurn = putsStart + churnEveryMs;
  let nextCrash = putsStart + crashEveryMs;
  const partitionMs = config.partitionMs ?? 0;
  const partitionAt = partitionMs > 0 ? putsStart + (config.puts * putEveryMs) / 3 : Infinity;
  let lastLine = performance.now();
  const end = Math.max(putsStart + config.puts * putEveryMs, partitionMs > 0 ? partitionAt + partitionMs : 0) + config.settleMs;
  while (clock.now() < end) {
    const t = clock.now();
    while (issued < config.puts && putsStart + issued * putEveryMs <= t) {
      // Writers are clients linked to a server (a client without one only queues its write).
      const linked = mesh.clients.filter((c) => c.alive && c.db.network.peers.some((p) => p.isServer));
      const client = (linked.length > 0 ? linked : mesh.clients)[Math.floor(random() * Math.max(1, linked.length || mesh.clients.length))]!;
      void client.db.putData(`key-${issued}`, { n: issued, at: t }).catch(() => undefined);
      issued++;
    }
    const churnUntil = putsStart + config.puts * putEveryMs;
    while (nextChurn <= t && nextChurn <= churnUntil) {
      await replaceOne(false);
      nextChurn += churnEveryMs;
    }
    while (nextCrash <= t && nextCrash <= churnUntil) {
      await replaceOne(true);
      nextCrash += crashEveryMs;
    }
    if (partition === undefined && t >= partitionAt) {
      mesh.fabric.cuts.partition(sideOf);
      partition = { startedAt: t, healedAt: -1, putsDuring: 0, incompleteAtHeal: 0, afterHealMs: [], crossLinksAtHeal: 0, crossLinksAtEnd: 0 };
      progress(`${label}: partition into two halves for ${partitionMs / 1000} s`);
    }
    if (partition && partition.healedAt < 0 && t >= partition.startedAt + partitionMs) {
      partition.healedAt = t;
      partition.crossLinksAtHeal = crossLinks();
      mesh.fabric.heal();
      tracker.checkComplete(mesh.liveServers);
      healPuts = [...tracker.puts.values()].filter((p) => p.completeAt === undefined);
      partition.putsDuring = [...tracker.puts.values()].filter((p) => p.issuedAt >= partition!.startedAt && p.issuedAt < t).length;
      partition.incompleteAtHeal = healPuts.length;
      progress(`${label}: healed; ${healPuts.length} puts not on every live server, ${partition.crossLinksAtHeal} server links across`);
    }
    await clock.advance(Math.min(CHECK_MS, putEveryMs));
    const incomplete = tracker.checkComplete(mesh.liveServers);
    const healed = partition ? partition.healedAt >= 0 : partitionMs === 0;
    if (issued >= config.puts && incomplete === 0 && clock.now() >= churnUntil + 1000 && config.churn === 0 && !(config.crash! > 0) && healed) break;
    if (performance.now() - lastLine > 5000) {
      lastLine = performance.now();
      const rss = process.memoryUsage().rss / 2 ** 20;
      progress(`${label}: ${issued}/${config.puts} puts, ${incomplete} not yet on every live server, simulated ${((clock.now() - putsStart) / 1000).toFixed(1)} s, ${mesh.fabric.frames} frames, churn ${killed} out (${crashed} crashed) / ${joined} in, RSS ${rss.toFixed(0)} MiB`);
    }
  }
  counting = false;
  if (partition && partition.healedAt >= 0) {
    const healedAt = partition.healedAt;
    partition.afterHealMs = healPuts.map((p) => (p.completeAt === undefined ? undefined : Math.max(0, p.completeAt - healedAt)));
    partition.crossLinksAtEnd = crossLinks();
  }
  const puts = [...tracker.puts.values()].map((trace) => tracker.summary(trace, mesh.servers));
  const perPut = (f: (c: { frames: number; bytes: number }) => number) => {
    const values = mesh.servers.map((s) => f(received.get(s.db.network) ?? { frames: 0, bytes: 0 }) / Math.max(1, puts.length));
    return { mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length), max: Math.max(0, ...values) };
  };
  const { links, eager } = mesh.linkCounts();
  const result: ScenarioResult = {
    config,
    puts,
    links,
    eagerLinks: eager,
    killed,
    joined,
    crashed,
    partition,
    bytesPerNode: heapBuilt / (config.servers + config.clients),
    rssBytes: rssBuilt,
    frames: mesh.fabric.frames,
    bytes: mesh.fabric.bytes,
    putFrames: (mesh.fabric.frames - framesBefore) / Math.max(1, puts.length),
    putBytes: (mesh.fabric.bytes - bytesBefore) / Math.max(1, puts.length),
    serverFramesIn: perPut((c) => c.frames),
    serverBytesIn: perPut((c) => c.bytes),
    simulatedMs: clock.now() - putsStart,
    realMs: 0,
  };
  progress(`${label}: done, closing`);
  await mesh.close();
  result.realMs = performance.now() - realStart;
  return result;
}

export type { SimNode };
