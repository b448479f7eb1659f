/**
 * The measured runs of the discovery benchmark (bench/discovery.ts), one
 * function per scenario: each opens what it needs on the loopback DHT,
 * times one discovery, and closes everything before it returns.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type DHT from "bittorrent-dht";
import { ToolDb, type PeerInfo } from "../src/index.js";
import { DHTClient, DHTServer } from "../src/entries/discovery.js";
import type { WebSocketNetwork } from "../src/network/websocket-network.js";
import type { LoopbackDht } from "./dht-net.js";

const require = createRequire(import.meta.url);

/** discovery-channel's lookup-only join otherwise repeats only every 10–15 min. */
export const DC_INTERVAL = 1000;
/** Bound on one measured run; a run that takes longer counts as a miss. */
const RUN_TIMEOUT = 10_000;

const SERVER_HOST = "127.0.0.2";
const CLIENT_HOST = "127.0.0.3";
const DC_ANNOUNCER_HOST = "127.0.0.4";
const DC_LOOKER_HOST = "127.0.0.5";

// ---------------------------------------------------------------- helpers

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;
interface Listenable {
  on(event: string, listener: AnyListener): unknown;
  off(event: string, listener: AnyListener): unknown;
}

/** A pending wait for an event: `at` resolves with performance.now() of the first match, or rejects on timeout. */
interface EventWait {
  at: Promise<number>;
  cancel(): void;
}

function waitEvent<A extends unknown[]>(emitter: Listenable, event: string, ms: number, filter: (...args: A) => boolean = () => true): EventWait {
  let cancel = () => undefined as void;
  const at = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no '${event}' within ${ms} ms`));
    }, ms);
    function listener(...args: A): void {
      if (!filter(...args)) return;
      const t = performance.now();
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(t);
    }
    cancel = () => {
      clearTimeout(timer);
      emitter.off(event, listener);
    };
    emitter.on(event, listener);
  });
  at.catch(() => undefined); // awaited by the caller; never an unhandled rejection
  return { at, cancel };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function freshTopic(kind: string, run: number): string {
  return `bench-${kind}-${run}-${randomBytes(6).toString("hex")}`;
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------- 1. raw bittorrent-dht

interface RawResult {
  total: number;
  announce: number;
  lookup: number;
  local: boolean;
}

export async function rawRun(net: LoopbackDht, run: number): Promise<RawResult> {
  const n = net.nodes.length;
  // Two distinct nodes of the network, spread over runs.
  const ai = (run * 7 + 1) % n;
  let bi = (run * 13 + 5) % n;
  if (bi === ai) bi = (bi + 1) % n;
  const announcer = net.nodes[ai]!;
  const looker = net.nodes[bi]!;
  const infoHash = randomBytes(20);
  const port = 10_000 + (run & 0x3fff);

  const t0 = performance.now();
  const tAnnounced = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("announce callback not called")), RUN_TIMEOUT);
    announcer.announce(infoHash, port, (err) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(performance.now());
    });
  });
  let local = false;
  const found = waitEvent<[{ host: string; port: number }, Buffer, unknown]>(looker, "peer", RUN_TIMEOUT, (peer, hash, from) => {
    if (!hash.equals(infoHash) || peer.port !== port) return false;
    local = from === null;
    return true;
  });
  // Let the lookup finish too, so that runs never overlap.
  let abort: () => void = () => undefined;
  const lookupDone = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, RUN_TIMEOUT);
    abort = looker.lookup(infoHash, () => {
      clearTimeout(timer);
      resolve();
    });
  });
  try {
    const tPeer = await found.at;
    return { total: tPeer - t0, announce: tAnnounced - t0, lookup: tPeer - tAnnounced, local };
  } finally {
    found.cancel();
    await lookupDone;
    abort();
  }
}

// ---------------------------------------------------------------- 2. discovery-channel 5.5.1

interface Channel {
  dht: { listen(port: number, host: string): void; nodeId: Buffer };
  join(id: string, port?: number): void;
  on(event: string, fn: AnyListener): unknown;
  off(event: string, fn: AnyListener): unknown;
  destroy(cb: () => void): void;
}

function channel(net: LoopbackDht, host: string): Channel {
  const DC = require("discovery-channel") as (opts: object) => Channel;
  // dns off (it would start multicast DNS and whoami); private bootstrap only.
  const c = DC({ dns: false, dht: { bootstrap: net.bootstrap, interval: DC_INTERVAL } });
  c.on("error", () => undefined); // a bind error would otherwise crash the process
  c.dht.listen(0, host);
  return c;
}

export async function dcRun(net: LoopbackDht, run: number): Promise<number> {
  const topic = freshTopic("dc", run);
  const port = 20_000 + (run & 0x3fff);
  const announcer = channel(net, DC_ANNOUNCER_HOST);
  const looker = channel(net, DC_LOOKER_HOST);
  const found = waitEvent<[Buffer, { host: string; port: number }, string]>(
    looker,
    "peer",
    RUN_TIMEOUT,
    (id, peer) => id.toString() === topic && peer.port === port,
  );
  try {
    const t0 = performance.now();
    announcer.join(topic, port);
    looker.join(topic);
    return (await found.at) - t0;
  } finally {
    found.cancel();
    await Promise.all([announcer, looker].map((c) => new Promise<void>((resolve) => c.destroy(resolve))));
    net.forget(announcer.dht.nodeId);
    net.forget(looker.dht.nodeId);
  }
}

// ---------------------------------------------------------------- plain ToolDb handshake

export async function handshakeRun(run: number): Promise<{ total: number; afterReady: number }> {
  const topic = freshTopic("ws", run);
  const server = new ToolDb({ topic, server: true, host: SERVER_HOST, port: 0 });
  let client: ToolDb | undefined;
  try {
    await server.ready;
    const port = (server.network as WebSocketNetwork).port;
    if (port === undefined) throw new Error("server has no port");
    const t0 = performance.now();
    client = new ToolDb({ topic, peers: [{ host: SERVER_HOST, port }] });
    const connected = waitEvent(client, "connect", RUN_TIMEOUT);
    try {
      await client.ready;
      const tReady = performance.now();
      const tConnect = await connected.at;
      return { total: tConnect - t0, afterReady: tConnect - tReady };
    } finally {
      connected.cancel();
    }
  } finally {
    await Promise.all([client?.close(), server.close()]);
  }
}

// ---------------------------------------------------------------- 3 and 4: ours

function dhtOf(node: DHTServer | DHTClient): DHT | undefined {
  return node.discovery?.dht;
}

async function stopAll(net: LoopbackDht, nodes: Array<DHTServer | DHTClient>): Promise<void> {
  const dhts = nodes.map(dhtOf);
  await Promise.all(nodes.map((n) => n.stop()));
  for (const d of dhts) if (d) net.forget(d.nodeId);
}

function connectedTo(node: DHTClient, host: string): EventWait {
  return waitEvent<[PeerInfo]>(node.db, "peer-connect", RUN_TIMEOUT, (info) => info.outgoing && info.host === host);
}

export async function oursRun(net: LoopbackDht, run: number): Promise<{ total: number; found: number; afterStart: number }> {
  const topic = freshTopic("ours", run);
  // The clock starts before construction: a ToolDb begins its init (key generation) in its constructor.
  const t0 = performance.now();
  const server = new DHTServer(topic, SERVER_HOST, 0, { bootstrap: net.bootstrap });
  const client = new DHTClient(topic, { bootstrap: net.bootstrap, dhtHost: CLIENT_HOST });
  const connected = connectedTo(client, SERVER_HOST);
  let tFound = NaN;
  client.onPeerFound = (p) => {
    if (p.host === SERVER_HOST && Number.isNaN(tFound)) tFound = performance.now();
  };
  try {
    await Promise.all([server.start(), client.start()]);
    const tStarted = performance.now();
    const tConnected = await connected.at;
    return { total: tConnected - t0, found: tFound - t0, afterStart: tConnected - tStarted };
  } finally {
    connected.cancel();
    await stopAll(net, [client, server]);
  }
}

interface LateResult {
  total: number;
  found: number;
  announced: number;
  lookupPeriod: number;
}

/**
 * The client runs first and has finished one empty lookup; the server
 * starts `phase` ms after that lookup ended (the phases spread over one
 * lookup period across runs, so the runs sample the whole cycle).
 */
export async function lateRun(net: LoopbackDht, run: number, phase: number): Promise<LateResult> {
  const topic = freshTopic("late", run);
  const client = new DHTClient(topic, { bootstrap: net.bootstrap, dhtHost: CLIENT_HOST });
  let server: DHTServer | undefined;
  const connected = connectedTo(client, SERVER_HOST);
  let tFound = NaN;
  client.onPeerFound = (p) => {
    if (p.host === SERVER_HOST && Number.isNaN(tFound)) tFound = performance.now();
  };
  const lookupsDone: number[] = [];
  const onLookup = () => lookupsDone.push(performance.now());
  let serverAnnounced: EventWait | undefined;
  try {
    await client.start();
    const discovery = client.discovery;
    if (!discovery) throw new Error("client has no discovery after start()");
    await waitEvent(discovery, "lookup", RUN_TIMEOUT).at;
    discovery.on("lookup", onLookup);
    if (discovery.peers(topic).length > 0) throw new Error("client found a peer before the server started");
    await sleep(phase);
    const t0 = performance.now();
    server = new DHTServer(topic, SERVER_HOST, 0, { bootstrap: net.bootstrap });
    await server.start();
    // Announcing cannot have completed yet: start() resolves as the join begins.
    if (server.discovery) serverAnnounced = waitEvent(server.discovery, "announced", RUN_TIMEOUT);
    const tConnected = await connected.at;
    const tAnnounced = await serverAnnounced?.at.catch(() => NaN);
    // Period of the client's lookups: the first completion before the server started to the last one.
    const period = lookupsDone.length > 0 ? (lookupsDone[lookupsDone.length - 1]! - (t0 - phase)) / lookupsDone.length : NaN;
    discovery.off("lookup", onLookup);
    return { total: tConnected - t0, found: tFound - t0, announced: (tAnnounced ?? NaN) - t0, lookupPeriod: period };
  } finally {
    connected.cancel();
    serverAnnounced?.cancel();
    await stopAll(net, server ? [client, server] : [client]);
  }
}
