/**
 * What the parts of the network compliance suite (network-suite.ts) share:
 * the factory a transport is tested through, the suite's node helpers, and
 * the waits and recorders the tests use.
 */
import assert from "node:assert/strict";
import type { ToolDb } from "../../src/index.js";
import type { ToolDbOptions } from "../../src/node/options.js";
import { clientIdOf } from "../../src/records/peer-record.js";
import { type Listenable, until } from "../helpers/wait.js";

export interface NetworkAddress {
  host: string;
  port: number;
}

export interface NetworkNodeFactory {
  /**
   * A ready server node using the adapter under test, accepting links.
   * `opts` override the factory's defaults (the suite passes `topic` and
   * hook-free options only). The default topic must be the same for every
   * node the factory makes.
   */
  server(opts?: Partial<ToolDbOptions>): Promise<ToolDb>;
  /** A ready client node using the adapter under test; it dials `server` when one is given. */
  client(server: ToolDb | undefined, opts?: Partial<ToolDbOptions>): Promise<ToolDb>;
  /** What another node passes to `network.connectTo` to reach `server`. */
  addressOf(server: ToolDb): NetworkAddress;
  /**
   * Optional: a second, different address that reaches the same server
   * (e.g. a TCP proxy). Enables the "same identity under two addresses" test.
   */
  alias?(server: ToolDb): Promise<NetworkAddress & { close(): Promise<void> }>;
}

/** Generous bound for anything that should take milliseconds on loopback. */
export const T = 5000;

/** What every part of the suite gets from `networkAdapterSuite`. */
export interface NetworkSuiteContext {
  factory: NetworkNodeFactory;
  /** A ready server; closed after the test. */
  server(opts?: Partial<ToolDbOptions>): Promise<ToolDb>;
  /** A ready client (dialing `srv` when given); closed after the test. */
  client(srv?: ToolDb, opts?: Partial<ToolDbOptions>): Promise<ToolDb>;
  /** `from` dials `to` by its address. */
  connect(from: ToolDb, to: ToolDb): void;
  /** Run after the test, after its nodes closed. */
  cleanups: Array<() => Promise<void>>;
}

// ---- helpers --------------------------------------------------------------

export function peerIdOf(db: ToolDb): string {
  return clientIdOf(db.nodeAddress());
}

/** Both nodes hold a session with each other. */
export async function bothLinked(a: ToolDb, b: ToolDb): Promise<void> {
  await until(
    () => a.network.session(peerIdOf(b)) !== undefined && b.network.session(peerIdOf(a)) !== undefined,
    [
      [a, "peer-connect"],
      [b, "peer-connect"],
    ],
    T,
    "both ends to see the link",
  );
}

/**
 * For state that changes without a ToolDb event (dial target bookkeeping):
 * re-checked on every link event of the given nodes and every 10 ms, bounded.
 */
export async function eventually(cond: () => boolean, dbs: ToolDb[], what: string): Promise<void> {
  const ticker = new TickEmitter(10);
  try {
    const triggers: Array<[Listenable, string]> = [[ticker, "tick"]];
    for (const db of dbs) triggers.push([db, "peer-connect"], [db, "peer-disconnect"], [db, "dial-failed"]);
    await until(cond, triggers, T, what);
  } finally {
    ticker.stop();
  }
}

class TickEmitter implements Listenable {
  private readonly listeners = new Set<() => void>();
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(ms: number) {
    this.timer = setInterval(() => {
      for (const l of this.listeners) l();
    }, ms);
  }
  on(_event: string, fn: () => void): void {
    this.listeners.add(fn);
  }
  off(_event: string, fn: () => void): void {
    this.listeners.delete(fn);
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

interface HookCalls {
  onConnect: number[];
  onDisconnect: number[];
  onPeerConnect: string[];
  onPeerDisconnect: string[];
}

/** Installs the tool-db hooks and records their calls. */
export function hookRecorder(db: ToolDb): { calls: HookCalls } {
  const calls: HookCalls = { onConnect: [], onDisconnect: [], onPeerConnect: [], onPeerDisconnect: [] };
  db.onConnect = () => void calls.onConnect.push(Date.now());
  db.onDisconnect = () => void calls.onDisconnect.push(Date.now());
  db.onPeerConnect = (id) => void calls.onPeerConnect.push(id);
  db.onPeerDisconnect = (id) => void calls.onPeerDisconnect.push(id);
  return { calls };
}

/** `n` clients of `srv` made by `client`, each linked both ways before the next is made. */
export async function linkedClients(client: NetworkSuiteContext["client"], srv: ToolDb, n: number): Promise<ToolDb[]> {
  const clients: ToolDb[] = [];
  for (let i = 0; i < n; i++) {
    const cli = await client(srv);
    await bothLinked(srv, cli);
    clients.push(cli);
  }
  return clients;
}

/**
 * `node` lost its only link, to `peerId`: the peer-disconnect event it fired
 * (`info`) names that peer with a close code and reason, the tool-db hooks
 * fired once each, and nothing is left linked.
 */
export function assertLastLinkGone(node: ToolDb, calls: HookCalls, peerId: string, info: { peerId: string; code: number; reason: string }): void {
  assert.equal(info.peerId, peerId);
  assert.equal(typeof info.code, "number");
  assert.equal(typeof info.reason, "string");
  assert.deepEqual(calls.onPeerDisconnect, [peerId]);
  assert.equal(calls.onDisconnect.length, 1);
  assert.equal(node.isConnected, false);
  assert.equal(node.network.peers.length, 0);
}

export function connectLog(db: ToolDb): { connects: number; disconnects: number } {
  const log = { connects: 0, disconnects: 0 };
  db.on("peer-connect", () => void log.connects++);
  db.on("peer-disconnect", () => void log.disconnects++);
  return log;
}

const ALL_EVENTS = [
  "ready",
  "init",
  "connect",
  "disconnect",
  "peer-connect",
  "peer-disconnect",
  "put",
  "crdtput",
  "data",
  "verified",
  "message",
  "refused",
  "put-refused",
  "username-conflict-resolved",
  "current-user-lost-username",
  "signup-conflict-detected",
  "dial-failed",
  "servers",
  "error",
] as const;

/**
 * Listens to every ToolDb event, every hook, and the adapter's own events;
 * anything delivered once `closing` is set is recorded in `fired`.
 */
export function lateEvents(db: ToolDb): { closing: boolean; fired: string[] } {
  const state = { closing: false, fired: [] as string[] };
  const note = (what: string) => () => {
    if (state.closing) state.fired.push(what);
  };
  for (const event of ALL_EVENTS) db.on(event, note(event));
  for (const event of ["session-open", "session-close", "dial-failed"] as const) db.network.on(event, note(`network:${event}`));
  db.onConnect = note("onConnect");
  db.onDisconnect = note("onDisconnect");
  db.onPeerConnect = note("onPeerConnect");
  db.onPeerDisconnect = note("onPeerDisconnect");
  return state;
}
