/**
 * The interop tests' nodes and waits (test/interop.test.ts, interop-links.test.ts): tooldb-dht and
 * npm tool-db 2.6.6 nodes on a fresh topic, closed after each test, and
 * bounded, event-driven waits on both kinds.
 */
import assert from "node:assert/strict";
import t from "tool-db";
import u from "@tool-db/ecdsa-user";
import { ToolDb, type ToolDbOptions, type ToolDbRecord, type RefusalEvent, WebSocketNetwork } from "../../src/index.js";
import { type Listenable, WaitTimeoutError, waitFor as waitForEvent, withTimeout as boundedBy } from "../helpers/wait.js";
import { type LegacyToolDb, ListenWhenListedWsAdapter, MemoryToolDbStore, ToolDbWsAdapter } from "./tooldb-ws-adapter.js";

const { ToolDb: LegacyToolDbClass } = t;
export const { getPeerSignature } = t;
const EcdsaUser = u.default;

export const LOOPBACK = "127.0.0.1";
const WAIT_MS = 5000;

// ---- bounded, event-driven waiting ---------------------------------------

/** The shared helpers, with this file's default bound and a description in the timeout message. */
export function waitFor(emitter: Listenable, event: string, what: string, predicate?: (...args: any[]) => boolean, ms = WAIT_MS): Promise<any[]> {
  const promise = waitForEvent(emitter, event, ms, predicate).catch((err: unknown) => {
    throw err instanceof WaitTimeoutError ? new Error(`timed out after ${ms} ms waiting for ${what}`) : err;
  });
  // Waits are often set up before the action; if the test fails earlier, this
  // must not surface as an unhandled rejection. Awaiting `promise` still throws.
  promise.catch(() => undefined);
  return promise;
}

export function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return boundedBy(promise, ms, what);
}

/** Runs a test body with fresh nodes on a fresh topic; closes them and checks that no socket is left. */
export async function withNodes(body: (nodes: Nodes) => Promise<void>): Promise<void> {
  const nodes = new Nodes(freshTopic());
  try {
    await body(nodes);
  } finally {
    await nodes.close();
  }
  await assertNoSockets();
}

/**
 * Whichever comes first on a dialing node: "connected", what `onRefused`
 * makes of a refusal (undefined = keep waiting), or "gave up: ..." once the
 * dialer stops retrying.
 */
export function handshakeOutcome(client: ToolDb, what: string, onRefused = (e: RefusalEvent): string | undefined => `refused: ${e.reason}`): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const finish = (result: string | Error) => {
      clearTimeout(timer);
      client.off("peer-connect", onConnect);
      client.off("refused", onRefusal);
      client.off("dial-failed", onDialFailed);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    const onConnect = () => finish("connected");
    const onRefusal = (e: RefusalEvent) => {
      const result = onRefused(e);
      if (result !== undefined) finish(result);
    };
    const onDialFailed = (e: { final: boolean; reason: string }) => {
      if (e.final) finish(`gave up: ${e.reason}`);
    };
    client.on("peer-connect", onConnect);
    client.on("refused", onRefusal);
    client.on("dial-failed", onDialFailed);
  });
}

// ---- nodes ------------------------------------------------------------------

export interface Legacy {
  db: LegacyToolDb;
  net: ToolDbWsAdapter;
  store: MemoryToolDbStore;
}

/** A listening tool-db 2.6.6 server and the port it listens on. */
export interface LegacyServer extends Legacy {
  port: number;
}

/** Owns every node a test starts; `close()` closes them all, 2.6.6 networks included (2.6.6's own close() only closes stores). */
export class Nodes {
  private readonly ours: ToolDb[] = [];
  private readonly legacy: Legacy[] = [];
  private seq = 0;

  constructor(readonly topic: string) {}

  async dhtServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
    const db = new ToolDb({ server: true, host: LOOPBACK, port: 0, topic: this.topic, handshakeTimeout: 2000, ...opts });
    this.ours.push(db);
    await db.ready;
    return db;
  }

  /** A tooldb-dht client linked to the server at `port` (ours or 2.6.6); resolves once the handshake is done. */
  async dhtClient(port: number, opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
    const db = new ToolDb({
      topic: this.topic,
      peers: [{ host: LOOPBACK, port }],
      wait: 20,
      maxReconnectDelay: 200,
      maxRetries: 5,
      handshakeTimeout: 2000,
      ...opts,
    });
    this.ours.push(db);
    const linked = waitFor(db, "peer-connect", "tooldb-dht client handshake");
    await db.ready;
    await linked;
    return db;
  }

  /**
   * A tool-db 2.6.6 node with the test WebSocket adapter, ecdsa-user and a
   * memory store. With `peers`, resolves once every peer answered the ping
   * (the pong registered the socket, so sends reach it).
   */
  async legacyNode(opts: { server?: boolean; port?: number; peers?: number[]; listenWhenListed?: boolean } = {}): Promise<Legacy> {
    const peers = (opts.peers ?? []).map((port) => ({ host: LOOPBACK, port }));
    const db = new LegacyToolDbClass({
      topic: this.topic,
      server: opts.server ?? false,
      host: LOOPBACK,
      port: opts.port ?? 0,
      peers,
      networkAdapter: opts.listenWhenListed ? ListenWhenListedWsAdapter : ToolDbWsAdapter,
      storageAdapter: MemoryToolDbStore,
      userAdapter: EcdsaUser,
      storageName: `legacy-${this.topic}-${this.seq++}`,
      pow: 0,
      maxRetries: 3,
      wait: 50,
    });
    const net = db.network as unknown as ToolDbWsAdapter;
    const node = { db, net, store: db.store as unknown as MemoryToolDbStore };
    this.legacy.push(node);
    const sessions = Promise.all(
      peers.map(() => waitFor(net.events, "session", "tool-db 2.6.6 handshake (pong)", (_id: string, outgoing: boolean) => outgoing)),
    );
    await withTimeout(db.ready, "tool-db 2.6.6 init");
    await withTimeout(net.ready, "tool-db 2.6.6 adapter ready");
    await sessions;
    return node;
  }

  /** A tool-db 2.6.6 server (see legacyNode), resolved once it listens, with its port. */
  async legacyServer(opts: { port?: number; listenWhenListed?: boolean } = {}): Promise<LegacyServer> {
    const node = await this.legacyNode({ ...opts, server: true });
    const port = node.net.port;
    assert.ok(port, "the tool-db 2.6.6 server is listening");
    return { ...node, port };
  }

  /** Closes `db` with the others. */
  adopt(db: ToolDb): ToolDb {
    this.ours.push(db);
    return db;
  }

  /**
   * Our nodes first: a tooldb-dht node whose dialed link drops while it is
   * still running schedules a redial (see the reconnect test below). Then the
   * 2.6.6 networks (2.6.6 never redials), then the 2.6.6 stores.
   */
  async close(): Promise<void> {
    await Promise.all(this.ours.map((n) => n.close()));
    await Promise.all(this.legacy.map((n) => n.net.close()));
    await Promise.all(this.legacy.map((n) => n.db.close()));
  }
}

/**
 * After a test closed its nodes, no listening or connected socket may remain.
 * Handles are released an event-loop turn or two after their 'close' events,
 * so this re-checks once per turn, for at most `ms`.
 */
async function assertNoSockets(ms = 1000): Promise<void> {
  const tcp = () => process.getActiveResourcesInfo().filter((r) => r.startsWith("TCP"));
  const deadline = Date.now() + ms;
  while (tcp().length > 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(tcp(), [], "every socket and server is closed");
}

export function portOf(db: ToolDb): number {
  const port = (db.network as WebSocketNetwork).port;
  assert.ok(port, "server is listening");
  return port;
}

export function recordRefusals(...dbs: ToolDb[]): RefusalEvent[] {
  const seen: RefusalEvent[] = [];
  for (const db of dbs) db.on("refused", (e) => seen.push(e));
  return seen;
}

/** Our node stored a verified record under `key`. */
export function ourPut(db: ToolDb, key: string, what: string): Promise<any[]> {
  return waitFor(db, "data", what, (r: ToolDbRecord) => r.k === key);
}

/** A 2.6.6 node verified and stored a record under `key` (store write is the last step of handlePut). */
export function legacyStored(node: Legacy, key: string, what: string): Promise<any[]> {
  return waitFor(node.store.events, "put", what, (k: string) => k === key);
}

/** A 2.6.6 node's verifier accepted a put for `key` (emitted by handlePut after toolDbVerificationWrapper). */
export function legacyVerified(node: Legacy, key: string, what: string): Promise<any[]> {
  return waitFor(node.db, "verified", what, (m: { data: ToolDbRecord }) => m.data.k === key);
}

let topicSeq = 0;
const freshTopic = () => `interop-${process.pid}-${topicSeq++}`;
