/**
 * One simulated run: N servers and M clients on the in-memory mesh, puts
 * from random clients at a fixed rate, servers killed and started at the
 * churn rate, and the per-put figures once every put settled.
 */
import type { PeerAddress } from "../src/discovery/peer-table.js";
import type { DhtPhaseResult } from "./dht-phase.js";
import { DEFAULT_MIN_SERVER_LINKS } from "../src/peering/server-mesh.js";
import { SimMesh, type SimNode } from "./mesh.js";
import { PutTracker, type PutSummary } from "./put-tracker.js";
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
}

export interface ScenarioResult {
  config: ScenarioConfig;
  puts: PutSummary[];
  links: number[];
  eagerLinks: number[];
  killed: number;
  joined: number;
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
  const mesh = new SimMesh({ topic: "sim-topic", delayMs: config.delayMs, random, serverLinks: DEFAULT_MIN_SERVER_LINKS, clientLinks: 2, db: { broadcast: { mode: config.mode } } });
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

  // Churn: one server out and a fresh one in, evenly spread over each minute.
  const churnEveryMs = config.churn > 0 ? 60_000 / (config.churn * config.servers) : Infinity;
  const announced: PeerAddress[] = mesh.servers.map((s) => SimMesh.address(s.index));
  const completeness = dht.serverCompleteness.length > 0 ? dht.serverCompleteness.reduce((a, b) => a + b, 0) / dht.serverCompleteness.length : 1;
  let killed = 0;
  let joined = 0;
  const churnOnce = async () => {
    const live = mesh.liveServers;
    const victim = live[Math.floor(random() * live.length)];
    if (victim) {
      void mesh.kill(victim);
      killed++;
    }
    // A new server's lookup returns a share of what was ever announced (dead ones too), as the DHT does.
    const candidates = shuffled(announced, random).slice(0, Math.max(1, Math.round(completeness * announced.length)));
    const node = await mesh.addServer(candidates);
    announced.push(SimMesh.address(node.index));
    tracker.watchServer(node);
    joined++;
  };

  const putEveryMs = 1000 / config.rate;
  const putsStart = clock.now();
  let issued = 0;
  let nextChurn = putsStart + churnEveryMs;
  let lastLine = performance.now();
  const end = putsStart + config.puts * putEveryMs + config.settleMs;
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
      await churnOnce();
      nextChurn += churnEveryMs;
    }
    await clock.advance(Math.min(CHECK_MS, putEveryMs));
    const incomplete = tracker.checkComplete(mesh.liveServers);
    if (issued >= config.puts && incomplete === 0 && clock.now() >= churnUntil + 1000 && config.churn === 0) break;
    if (performance.now() - lastLine > 5000) {
      lastLine = performance.now();
      const rss = process.memoryUsage().rss / 2 ** 20;
      progress(`${label}: ${issued}/${config.puts} puts, ${incomplete} not yet on every live server, simulated ${((clock.now() - putsStart) / 1000).toFixed(1)} s, ${mesh.fabric.frames} frames, churn ${killed} out / ${joined} in, RSS ${rss.toFixed(0)} MiB`);
    }
  }
  counting = false;
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
