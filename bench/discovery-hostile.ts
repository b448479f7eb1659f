/**
 * Discovery beside bogus announces (issue 16, attack 3). On a private DHT of
 * 20 of our nodes on loopback (they answer get_peers with at most 100 peers,
 * as mainline nodes do), an attacker announces bogus addresses on the topic
 * of one real DHTServer: closed ports, TCP tarpits (accept, never answer),
 * WebSocket servers that never answer the handshake, servers of another
 * topic. Measured: DHTClient.start() → its verified link to the real server,
 * default settings, the server's announce already stored. Beside each, the
 * same on a clean topic of the same DHT in the same run, interleaved run by
 * run. Every socket is on loopback; a UDP guard drops any other datagram.
 */
import { randomBytes } from "node:crypto";
import DHT from "bittorrent-dht";
import { DHTClient, DHTServer, startBootstrapNode, topicInfoHash, type BootstrapNode } from "../src/entries/discovery.js";
import { announcePorts, startBogusFleet, type BogusCounts, type BogusFleet } from "../test/helpers/bogus-servers.js";
import { destroyDht, dhtEvent } from "../test/helpers/dht-events.js";
import { guardUdpToLoopback } from "./dht-net.js";
import { fmt, median } from "./stats.js";

const DHT_NODES = 20;
const SERVER_HOST = "127.0.0.2";
const CLIENT_HOST = "127.0.0.3";
/** A client's WebSocket dials leave from 127.0.0.1 (servers dial from their own address). */
const CLIENT_DIAL_SOURCE = "127.0.0.1";

export interface HostileScenario {
  label: string;
  counts: BogusCounts;
  /** The attacker's addresses. */
  hosts: string[];
  /**
   * "announce": one DHT node per attacker address announces its ports;
   * "inject": the storing nodes are handed the peers directly, as if each
   * address had announced (a thousand DHT nodes would not fit this machine).
   */
  via: "announce" | "inject";
  /** The issue's aim for the hostile time, ms. */
  aimMs: number;
  /** A run slower than this counts as a miss. */
  timeoutMs: number;
}

const MIX_91: BogusCounts = { closed: 50, tarpits: 30, silent: 10, otherTopic: 1 };
const MIX_1000: BogusCounts = { closed: 550, tarpits: 330, silent: 110, otherTopic: 10 };

/** `n` loopback addresses in one /24 (127.0.0.first...). */
function sameNetwork(first: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${first + i}`);
}

/** `n` loopback addresses, each in a /24 of its own (127.A.B.1). */
function ownNetworks(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.${1 + Math.floor(i / 250)}.${i % 250}.1`);
}

/**
 * The issue's mixes: 91 (as it was attacked) and 1,000 in the same
 * proportions, from 8 attacker addresses in the real server's /24; and the
 * 1,000 from 1,000 networks, the case where spreading candidates by network
 * gains nothing.
 */
export const HOSTILE_SCENARIOS: HostileScenario[] = [
  { label: "91 bogus", counts: MIX_91, hosts: sameNetwork(70, 8), via: "announce", aimMs: 5_000, timeoutMs: 60_000 },
  { label: "1,000 bogus", counts: MIX_1000, hosts: sameNetwork(80, 8), via: "announce", aimMs: 30_000, timeoutMs: 120_000 },
  { label: "1,000 bogus, each from a network of its own", counts: MIX_1000, hosts: ownNetworks(1000), via: "inject", aimMs: 30_000, timeoutMs: 180_000 },
];

export interface HostileResult {
  scenario: HostileScenario;
  hostile: number[];
  /** The same runs: start() → the real server first reported by discovery. */
  hostileFound: number[];
  clean: number[];
  misses: number;
  error?: string;
  /** Links the bogus servers accepted per run (tarpits and silent servers), and the most open at once. */
  bogusDials: number[];
  maxOpen: number;
}

export interface HostileFigures {
  results: HostileResult[];
  runs: number;
  blockedSends: string[];
  seconds: number;
}

async function capturedDht(size: number): Promise<{ bootstrap: string[]; nodes: BootstrapNode[] }> {
  const nodes: BootstrapNode[] = [];
  try {
    const seed = await startBootstrapNode({ host: "127.0.0.100", port: 0, bootstrap: false });
    nodes.push(seed);
    const bootstrap = [`127.0.0.100:${seed.address().port}`];
    for (let i = 1; i < size; i++) {
      const node = await startBootstrapNode({ host: `127.0.0.${100 + i}`, port: 0, bootstrap });
      nodes.push(node);
      if (!node.dht.ready) await dhtEvent(node.dht, "ready", 5000);
    }
    return { bootstrap, nodes };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.close()));
    throw err;
  }
}

/** Stores the peers on a node as its announce_peer handler would (bittorrent-dht 11's own `_addPeer`). */
function injectPeers(dht: DHT, infoHash: Buffer, byHost: Map<string, number[]>): void {
  const node = dht as unknown as { _addPeer(peer: { host: string; port: number }, infoHash: Buffer, from: { host: string; port: number }): void };
  for (const [host, ports] of byHost) for (const port of ports) node._addPeer({ host, port }, infoHash, { host, port });
}

function freshTopic(kind: string, run: number): string {
  return `bench-hostile-${kind}-${run}-${randomBytes(6).toString("hex")}`;
}

interface RunTimes {
  /** start() → verified link with the real server. */
  linked: number;
  /** start() → the real server's address first reported by discovery. */
  found: number;
}

/** start() of a DHTClient → its verified link to the real server; both stopped before it returns. */
async function timeToServer(bootstrap: string[], topic: string, before: () => Promise<void>, timeoutMs: number): Promise<RunTimes> {
  const server = new DHTServer(topic, SERVER_HOST, 0, { bootstrap });
  let client: DHTClient | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await server.start();
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error("the server's announce did not complete")), timeoutMs);
      server.discovery!.once("announced", () => resolve());
    });
    clearTimeout(timer);
    await before();
    const address = server.db.nodeAddress();
    const t0 = performance.now();
    client = new DHTClient(topic, { bootstrap, dhtHost: CLIENT_HOST });
    let found = NaN;
    client.onPeerFound = (peer) => {
      if (peer.host === SERVER_HOST && Number.isNaN(found)) found = performance.now() - t0;
    };
    const linked = new Promise<number>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no link to the real server within ${timeoutMs} ms`)), timeoutMs);
      client!.db.on("peer-connect", (info) => info.address === address && resolve(performance.now()));
    });
    await client.start();
    return { linked: (await linked) - t0, found };
  } finally {
    clearTimeout(timer);
    await Promise.all([client?.stop(), server.stop()]);
  }
}

export async function hostileDiscoveryBenchmark(runs = 3, scenarios = HOSTILE_SCENARIOS): Promise<HostileFigures> {
  const started = performance.now();
  const guard = guardUdpToLoopback();
  const fleets: BogusFleet[] = [];
  /** Per scenario: one DHT node on each attacker address (a DHT stores the announcer's own IP). */
  const attackers: DHT[][] = [];
  let net: { bootstrap: string[]; nodes: BootstrapNode[] } | undefined;
  try {
    net = await capturedDht(DHT_NODES);
    const bootstrap = net.bootstrap;
    const results: HostileResult[] = [];
    for (const [i, scenario] of scenarios.entries()) {
      fleets.push(await startBogusFleet(scenario.hosts, scenario.counts));
      const nodes: DHT[] = [];
      attackers.push(nodes);
      for (const host of scenario.via === "announce" ? scenario.hosts : []) {
        const attacker = new DHT({ bootstrap });
        nodes.push(attacker);
        attacker.on("error", () => undefined);
        attacker.listen(0, host);
        await dhtEvent(attacker, "ready", 5000);
      }
      results.push({ scenario, hostile: [], hostileFound: [], clean: [], misses: 0, bogusDials: [], maxOpen: 0 });
    }
    for (let run = 0; run < runs; run++) {
      for (const [i, result] of results.entries()) {
        const fleet = fleets[i]!;
        const { timeoutMs } = result.scenario;
        try {
          result.clean.push((await timeToServer(bootstrap, freshTopic("clean", run), async () => undefined, timeoutMs)).linked);
          const before = fleet.dials(CLIENT_DIAL_SOURCE).total;
          const topic = freshTopic("bogus", run);
          const announce = async () => {
            const infoHash = topicInfoHash(topic);
            for (const node of attackers[i]!) await announcePorts(node, infoHash, fleet.byHost.get(node.address().address) ?? []);
            if (result.scenario.via === "inject") for (const node of net!.nodes) injectPeers(node.dht, infoHash, fleet.byHost);
          };
          const t = await timeToServer(bootstrap, topic, announce, timeoutMs);
          result.hostile.push(t.linked);
          if (Number.isFinite(t.found)) result.hostileFound.push(t.found);
          result.bogusDials.push(fleet.dials(CLIENT_DIAL_SOURCE).total - before);
          result.maxOpen = Math.max(result.maxOpen, fleet.dials(CLIENT_DIAL_SOURCE).maxOpen);
        } catch (err) {
          result.misses++;
          result.error ??= err instanceof Error ? err.message : String(err);
        }
      }
    }
    return { results, runs, blockedSends: [...new Set(guard.blocked)], seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all([...fleets.map((f) => f.close()), ...attackers.flat().map(destroyDht), ...(net?.nodes ?? []).map((n) => n.close())]);
    guard.restore();
  }
}

function ms(values: number[]): string {
  if (values.length === 0) return "no completed run";
  return `median ${fmt(median(values), 0)} ms (min ${fmt(Math.min(...values), 0)}, max ${fmt(Math.max(...values), 0)})`;
}

export function printHostileFigures(f: HostileFigures, print: (line: string) => void = console.log): void {
  print(`## Discovery beside bogus announces: ${DHT_NODES}-node loopback DHT of our nodes (get_peers replies capped at 100), ${f.runs} runs each, default client settings`);
  for (const r of f.results) {
    const c = r.scenario.counts;
    const from = r.scenario.via === "inject" ? `${r.scenario.hosts.length} addresses in as many /24s, stored on every DHT node` : `announced from ${r.scenario.hosts.length} addresses in the real server's /24`;
    const mix = `${c.closed} closed ports, ${c.tarpits} TCP tarpits, ${c.silent} silent WebSocket servers, ${c.otherTopic} other-topic server${c.otherTopic === 1 ? "" : "s"}; ${from}`;
    print(`${r.scenario.label} (${mix}) beside the real server: DHTClient.start() -> verified link with it: ${ms(r.hostile)}`);
    print(`   clean topic, same DHT, same run: ${ms(r.clean)}; ratio of medians ${fmt(median(r.hostile) / median(r.clean), 1)} x`);
    print(`   start() -> the real server first reported by discovery: ${ms(r.hostileFound)}`);
    print(`   the client's links accepted by tarpits and silent servers per run: ${r.bogusDials.join(", ") || "-"}; most open at once: ${r.maxOpen}`);
    const met = r.hostile.length === f.runs && r.misses === 0 && Math.max(...r.hostile) <= r.scenario.aimMs;
    print(`   aim <= ${fmt(r.scenario.aimMs / 1000, 0)} s: ${met ? "met by every run" : "NOT met by every run"}${r.misses ? `; ${r.misses} runs failed: ${r.error}` : ""}`);
  }
  print(`non-loopback UDP sends blocked: ${f.blockedSends.length ? f.blockedSends.join(", ") : "none"}; wall time ${fmt(f.seconds, 1)} s`);
}
