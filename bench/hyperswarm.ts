/**
 * Hyperswarm transport and peer-cache figures, each beside its raw engine or
 * the transport it replaces, measured in the same run on loopback:
 *
 *   1. HyperswarmNetwork join → ToolDb verified link ('peer-connect'),
 *      against raw hyperswarm join → 'connection' (same testnet, fresh topic
 *      per run, server announced first in both);
 *   2. relayed verified puts/s and p50/p99 (one put at a time) writer →
 *      server → subscriber, over Hyperswarm against WebSocket (same code,
 *      same process layout: all three nodes in this process);
 *   3. a DHTClient restarted with the mainline DHT cut off → first verified
 *      link from its peer cache, against the same client's first start on
 *      the live DHT, and a plain ToolDb given the address (the floor).
 *
 * Every HyperDHT and mainline node has an explicit loopback bootstrap
 * (hyperdht/testnet, bench/dht-net); a dead bootstrap is a closed loopback port.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import createTestnet, { type Testnet } from "hyperdht/testnet.js";
import Hyperswarm, { type SwarmSocket } from "hyperswarm";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { DHTClient, DHTServer } from "../src/entries/discovery.js";
import { HyperswarmNetwork, topicKey } from "../src/network/hyperswarm-network.js";
import type { NetworkAdapterConstructor } from "../src/network/network-adapter.js";
import { WebSocketNetwork } from "../src/network/websocket-network.js";
import { createLoopbackDht } from "./dht-net.js";
import { TRUSTED_WRITER } from "./presign.js";
import { type RelayFigures, relayedPuts } from "./relay-transport.js";
import { fmt, median } from "./stats.js";

export interface HyperswarmFigures {
  joinRaw: number[];
  joinLink: number[];
  relay: Record<"websocket" | "hyperswarm", { putsPerSecond: number; p50: number; p99: number }>;
  firstStart: number[];
  restartFromCache: number[];
  direct: number[];
}

const once = <T extends unknown[]>(emitter: { once(e: string, l: (...a: T) => void): unknown }, event: string) =>
  new Promise<T>((resolve) => emitter.once(event, (...a: T) => resolve(a)));

function swarmOn(testnet: Testnet): NetworkAdapterConstructor {
  return HyperswarmNetwork.with({ bootstrap: testnet.bootstrap, dhtHost: "127.0.0.1" });
}

async function joinRuns(testnet: Testnet, runs: number, progress: (s: string) => void): Promise<{ raw: number[]; link: number[] }> {
  const raw: number[] = [];
  const link: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Raw engine: announce, then time a client's join until 'connection'.
    const topic = topicKey(`bench-raw-${process.pid}-${i}`);
    const a = new Hyperswarm({ dht: testnet.createNode() });
    const b = new Hyperswarm({ dht: testnet.createNode() });
    for (const swarm of [a, b]) swarm.on("connection", (s: SwarmSocket) => s.on("error", () => undefined));
    await a.join(topic, { server: true, client: false }).flushed();
    const t0 = performance.now();
    const connected = once<[SwarmSocket]>(b, "connection");
    b.join(topic, { server: false, client: true });
    const [socket] = await connected;
    raw.push(performance.now() - t0);
    socket.on("error", () => undefined);
    await Promise.all([a.destroy(), b.destroy()]);

    // Ours: the same, through HyperswarmNetwork, until the signed handshake is done.
    const name = `bench-link-${process.pid}-${i}`;
    const server = new ToolDb({ server: true, port: 0, topic: name, networkAdapter: swarmOn(testnet) });
    await server.ready;
    await (server.network as HyperswarmNetwork).joined;
    const t1 = performance.now();
    const client = new ToolDb({ topic: name, networkAdapter: swarmOn(testnet) });
    await once(client, "peer-connect");
    link.push(performance.now() - t1);
    await Promise.all([client.close(), server.close()]);
    progress(`join ${i + 1}/${runs}`);
  }
  return { raw, link };
}

async function relayOver(transport: "websocket" | "hyperswarm", testnet: Testnet, total: number): Promise<RelayFigures> {
  const adapter = transport === "websocket" ? WebSocketNetwork : swarmOn(testnet);
  const base: Partial<ToolDbOptions> = { topic: `bench-relay-${transport}-${process.pid}`, networkAdapter: adapter, limits: TRUSTED_WRITER };
  return relayedPuts(
    async () => {
      const server = new ToolDb({ ...base, server: true, host: "127.0.0.1", port: 0 });
      await server.ready;
      if (transport === "hyperswarm") await (server.network as HyperswarmNetwork).joined;
      const peers = transport === "websocket" ? [{ host: "127.0.0.1", port: (server.network as WebSocketNetwork).port! }] : [];
      return { server, writer: new ToolDb({ ...base, peers }), subscriber: new ToolDb({ ...base, peers }) };
    },
    total,
    "hs-",
  );
}

async function restartRuns(runs: number, progress: (s: string) => void): Promise<{ first: number[]; cached: number[]; direct: number[] }> {
  const dht = await createLoopbackDht(20);
  const dir = mkdtempSync(join(tmpdir(), "tooldb-bench-cache-"));
  const first: number[] = [];
  const cached: number[] = [];
  const direct: number[] = [];
  const fast = { discovery: { fastInterval: 100, jitter: 0, timeout: 500 } };
  try {
    for (let i = 0; i < runs; i++) {
      const topic = `bench-cache-${process.pid}-${i}`;
      const server = new DHTServer(topic, "127.0.0.2", 0, { ...fast, bootstrap: dht.bootstrap });
      await server.start();
      const dataDir = join(dir, `c${i}`);
      let t = performance.now();
      const live = new DHTClient(topic, { ...fast, bootstrap: dht.bootstrap, dhtHost: "127.0.0.3", dataDir });
      await live.start();
      await once(live.db, "peer-connect");
      first.push(performance.now() - t);
      await live.stop();

      t = performance.now();
      const restarted = new DHTClient(topic, { ...fast, bootstrap: ["127.0.0.1:1"], dhtHost: "127.0.0.3", dataDir });
      await restarted.start();
      await once(restarted.db, "peer-connect");
      cached.push(performance.now() - t);
      await restarted.stop();

      t = performance.now();
      const plain = new ToolDb({ topic, peers: [{ host: "127.0.0.2", port: server.port }] });
      await once(plain, "peer-connect");
      direct.push(performance.now() - t);
      await plain.close();
      await server.stop();
      progress(`restart ${i + 1}/${runs}`);
    }
  } finally {
    await dht.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  return { first, cached, direct };
}

export async function hyperswarmBenchmark(runs: number, puts: number, progress: (s: string) => void = () => undefined): Promise<HyperswarmFigures> {
  const testnet = await createTestnet(10, { host: "127.0.0.1" });
  try {
    const join = await joinRuns(testnet, runs, progress);
    const websocket = await relayOver("websocket", testnet, puts);
    progress("relay over websocket done");
    const hyperswarm = await relayOver("hyperswarm", testnet, puts);
    progress("relay over hyperswarm done");
    const restart = await restartRuns(Math.max(3, Math.ceil(runs / 2)), progress);
    return {
      joinRaw: join.raw,
      joinLink: join.link,
      relay: { websocket, hyperswarm },
      firstStart: restart.first,
      restartFromCache: restart.cached,
      direct: restart.direct,
    };
  } finally {
    await testnet.destroy();
  }
}

const range = (v: number[]) => `median ${fmt(median(v))} ms (min ${fmt(Math.min(...v))}, max ${fmt(Math.max(...v))})`;

export function printHyperswarmFigures(f: HyperswarmFigures, out: (line: string) => void): void {
  out(`raw hyperswarm join -> connection: ${range(f.joinRaw)}`);
  out(`HyperswarmNetwork join -> verified ToolDb link: ${range(f.joinLink)}; ratio ${fmt(median(f.joinLink) / median(f.joinRaw), 2)} x raw`);
  const { websocket: ws, hyperswarm: hs } = f.relay;
  out(`relayed verified puts over WebSocket: ${fmt(ws.putsPerSecond, 0)} /s, one at a time p50 ${fmt(ws.p50, 3)} ms, p99 ${fmt(ws.p99, 3)} ms`);
  out(`relayed verified puts over Hyperswarm: ${fmt(hs.putsPerSecond, 0)} /s (${fmt(hs.putsPerSecond / ws.putsPerSecond, 2)} x WebSocket), p50 ${fmt(hs.p50, 3)} ms, p99 ${fmt(hs.p99, 3)} ms`);
  out(`DHTClient first start on a live 20-node DHT -> verified link: ${range(f.firstStart)}`);
  out(`restart with the DHT cut off -> verified link from the peer cache: ${range(f.restartFromCache)}; ${fmt(median(f.restartFromCache) / median(f.firstStart), 2)} x the live-DHT start`);
  out(`plain ToolDb given the address -> verified link (floor): ${range(f.direct)}; peer cache is ${fmt(median(f.restartFromCache) / median(f.direct), 2)} x the floor`);
}
