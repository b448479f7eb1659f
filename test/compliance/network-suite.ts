/**
 * Shared compliance suite for network adapters (the contract in
 * src/network/network-adapter.ts), in the spirit of libp2p's
 * interface-compliance-tests. A transport passes if every test here passes:
 *
 *   import { networkAdapterSuite } from "../test/compliance/network-suite.js";
 *   networkAdapterSuite("MyTransport", {
 *     server: (opts) => startNode({ server: true, networkAdapter: MyTransport, ...opts }),
 *     client: (server, opts) => startNode({ networkAdapter: MyTransport, peers: server ? [addr(server)] : [], ...opts }),
 *     addressOf: (server) => addr(server),
 *   });
 *
 * The suite only drives nodes through the transport-independent API
 * (ToolDb events and hooks, `network.connectTo`, `network.peers`,
 * `network.dialTargets()`), so it holds for any transport built on
 * ToolDbNetworkAdapter.
 *
 * What it pins down:
 * - the handshake completes and both ends report the other's peer id
 *   (`peer-connect` event and `onPeerConnect` hook, `connect`/`onConnect` once);
 * - the other end closing fires `peer-disconnect`/`onPeerDisconnect`, and
 *   `disconnect`/`onDisconnect` when it was the last link;
 * - messages flow both ways (puts are stored on the other end, gets are answered);
 * - `connectTo` the same address twice makes one link;
 * - two links between the same pair of identities collapse into one, the
 *   same one on both ends (mutual dial; and two addresses of one node when
 *   the factory can make an alias);
 * - a topic mismatch closes the link, and the dialer's `dial-failed` event
 *   carries code 4001, the refusal reason, and `final: true`;
 * - `close()` is idempotent, closes every link (the other side sees it) and
 *   no event or hook fires after it was called.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb, type PeerInfo } from "../../src/index.js";
import type { ToolDbOptions } from "../../src/core/options.js";
import { clientIdOf } from "../../src/core/peer-record.js";
import { ErrorCode } from "../../src/core/errors.js";
import { CloseCode } from "../../src/network/connection.js";
import type { DialFailedEvent } from "../../src/network/network-adapter.js";
import { record, until, waitFor, withTimeout, type Listenable } from "../helpers/wait.js";

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
const T = 5000;

export function networkAdapterSuite(name: string, factory: NetworkNodeFactory): void {
  describe(`network adapter compliance: ${name}`, () => {
    const nodes: ToolDb[] = [];
    const cleanups: Array<() => Promise<void>> = [];

    async function server(opts?: Partial<ToolDbOptions>): Promise<ToolDb> {
      const db = await factory.server(opts);
      nodes.push(db);
      return db;
    }

    async function client(srv?: ToolDb, opts?: Partial<ToolDbOptions>): Promise<ToolDb> {
      const db = await factory.client(srv, opts);
      nodes.push(db);
      return db;
    }

    function connect(from: ToolDb, to: ToolDb): void {
      const { host, port } = factory.addressOf(to);
      from.network.connectTo(host, port);
    }

    afterEach(async () => {
      await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
      for (const c of cleanups.splice(0)) await c();
    });

    it("client(server) connects on its own", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(srv);
      await bothLinked(srv, cli);
      assert.equal(cli.network.peers.length, 1);
      assert.equal(srv.network.peers.length, 1);
    });

    it("handshake completes and peer-connect / onPeerConnect fire on both ends with the other's peer id", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(undefined);
      const s = hookRecorder(srv);
      const c = hookRecorder(cli);
      const srvConnect = waitFor(srv, "peer-connect", T);
      const cliConnect = waitFor(cli, "peer-connect", T);
      connect(cli, srv);
      const [[fromSrv], [fromCli]] = await Promise.all([srvConnect, cliConnect]);

      assert.equal(fromSrv.peerId, peerIdOf(cli));
      assert.equal(fromSrv.address, cli.nodeAddress());
      assert.equal(fromSrv.isServer, false);
      assert.equal(fromSrv.outgoing, false);
      assert.equal(fromCli.peerId, peerIdOf(srv));
      assert.equal(fromCli.address, srv.nodeAddress());
      assert.equal(fromCli.isServer, true);
      assert.equal(fromCli.outgoing, true);

      assert.deepEqual(s.calls.onPeerConnect, [peerIdOf(cli)]);
      assert.deepEqual(c.calls.onPeerConnect, [peerIdOf(srv)]);
      assert.equal(s.calls.onConnect.length, 1);
      assert.equal(c.calls.onConnect.length, 1);
      assert.equal(srv.isConnected, true);
      assert.equal(cli.isConnected, true);
      assert.equal(srv.network.session(peerIdOf(cli))?.address, cli.nodeAddress());
      assert.equal(cli.network.session(peerIdOf(srv))?.address, srv.nodeAddress());
      assert.equal(cli.network.getClientAddress(), peerIdOf(cli));
    });

    it("when the client closes, the server fires peer-disconnect, onPeerDisconnect and onDisconnect", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(srv);
      await bothLinked(srv, cli);
      const s = hookRecorder(srv);
      const gone = waitFor(srv, "peer-disconnect", T);
      const last = waitFor(srv, "disconnect", T);
      await cli.close();
      const [[info]] = await Promise.all([gone, last]);
      assert.equal(info.peerId, peerIdOf(cli));
      assert.equal(typeof info.code, "number");
      assert.equal(typeof info.reason, "string");
      assert.deepEqual(s.calls.onPeerDisconnect, [peerIdOf(cli)]);
      assert.equal(s.calls.onDisconnect.length, 1);
      assert.equal(srv.isConnected, false);
      assert.equal(srv.network.peers.length, 0);
    });

    it("when the server closes, the client fires peer-disconnect, onPeerDisconnect and onDisconnect", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(srv);
      await bothLinked(srv, cli);
      const c = hookRecorder(cli);
      const gone = waitFor(cli, "peer-disconnect", T);
      const last = waitFor(cli, "disconnect", T);
      const srvId = peerIdOf(srv);
      await srv.close();
      const [[info]] = await Promise.all([gone, last]);
      assert.equal(info.peerId, srvId);
      assert.deepEqual(c.calls.onPeerDisconnect, [srvId]);
      assert.equal(c.calls.onDisconnect.length, 1);
      assert.equal(cli.isConnected, false);
      assert.equal(cli.network.peers.length, 0);
    });

    it("the disconnect hooks fire only for the last link going away", { timeout: 20_000 }, async () => {
      const srv = await server();
      const c1 = await client(srv);
      const c2 = await client(srv);
      await bothLinked(srv, c1);
      await bothLinked(srv, c2);
      const s = hookRecorder(srv);
      const first = waitFor(srv, "peer-disconnect", T);
      await c1.close();
      await first;
      assert.equal(s.calls.onDisconnect.length, 0, "one peer is still linked");
      assert.equal(srv.isConnected, true);
      const second = waitFor(srv, "disconnect", T);
      await c2.close();
      await second;
      assert.deepEqual(s.calls.onPeerDisconnect, [peerIdOf(c1), peerIdOf(c2)]);
      assert.equal(s.calls.onDisconnect.length, 1);
    });

    it("messages flow both ways: puts are stored on the other end, gets are answered", { timeout: 20_000 }, async () => {
      const srv = await server();
      await srv.putData("only-on-server", { side: "server", before: true });
      const cli = await client(srv);
      await bothLinked(srv, cli);

      // client -> server
      const stored = waitFor(srv, "put", T, (r) => r.k === "from-client");
      await cli.putData("from-client", { n: 1 });
      const [rec, from] = await stored;
      assert.deepEqual(rec.v, { n: 1 });
      assert.equal(from, peerIdOf(cli));
      assert.deepEqual((await srv.records.get("from-client"))?.v, { n: 1 });

      // server -> client
      const pushed = waitFor(cli, "put", T, (r) => r.k === "from-server");
      await srv.putData("from-server", "hello client");
      const [back, via] = await pushed;
      assert.equal(back.v, "hello client");
      assert.equal(via, peerIdOf(srv));
      assert.equal((await cli.records.get("from-server"))?.v, "hello client");

      // request / reply
      assert.deepEqual(await cli.getData("only-on-server", false, T), { side: "server", before: true });
    });

    it("connectTo the same address twice gives one link", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(undefined);
      const srvConnects = record<[PeerInfo]>(srv, "peer-connect");
      const cliConnects = record<[PeerInfo]>(cli, "peer-connect");
      const linked = waitFor(cli, "peer-connect", T);
      connect(cli, srv);
      connect(cli, srv);
      await linked;
      connect(cli, srv); // and once more while connected
      // Two full round trips after the link opened: a second dial started
      // together with the first would have completed its handshake by now.
      for (const key of ["twice-1", "twice-2"]) {
        const got = waitFor(srv, "put", T, (r) => r.k === key);
        await cli.putData(key, key);
        await got;
        assert.equal(await cli.getData(key, false, T), key);
      }
      assert.equal(cli.network.dialTargets().length, 1, "one dial target");
      assert.equal(cli.network.peers.length, 1);
      assert.equal(srv.network.peers.length, 1);
      assert.equal(srvConnects.events.length, 1, "server saw one link");
      assert.equal(cliConnects.events.length, 1, "client saw one link");
      srvConnects.stop();
      cliConnects.stop();
    });

    it("two links between the same identities (mutual dial) collapse into one, the same on both ends", { timeout: 20_000 }, async () => {
      const a = await server();
      const b = await server();
      const aLog = connectLog(a);
      const bLog = connectLog(b);
      connect(a, b);
      connect(b, a);
      // The link dialed by the smaller address survives, on both ends.
      const aDials = a.nodeAddress() < b.nodeAddress();
      const settled = () => {
        const ab = a.network.session(peerIdOf(b));
        const ba = b.network.session(peerIdOf(a));
        const aTarget = a.network.dialTargets()[0];
        const bTarget = b.network.dialTargets()[0];
        return (
          a.network.peers.length === 1 &&
          b.network.peers.length === 1 &&
          ab !== undefined &&
          ba !== undefined &&
          ab.outgoing === aDials &&
          ba.outgoing === !aDials &&
          aTarget?.state === (aDials ? "connected" : "parked") &&
          bTarget?.state === (aDials ? "parked" : "connected")
        );
      };
      await eventually(settled, [a, b], "one link between a and b, dialed by the smaller address");
      const ab = a.network.session(peerIdOf(b));
      const ba = b.network.session(peerIdOf(a));

      // The surviving link carries traffic, and nothing re-dials behind it.
      const got = waitFor(b, "put", T, (r) => r.k === "mutual");
      await a.putData("mutual", 1);
      await got;
      const gotBack = waitFor(a, "put", T, (r) => r.k === "mutual-back");
      await b.putData("mutual-back", 2);
      await gotBack;
      assert.equal(a.network.session(peerIdOf(b)), ab, "a's session unchanged");
      assert.equal(b.network.session(peerIdOf(a)), ba, "b's session unchanged");
      assert.equal(aLog.connects - aLog.disconnects, 1, "a: every extra peer-connect was balanced by a peer-disconnect");
      assert.equal(bLog.connects - bLog.disconnects, 1, "b: every extra peer-connect was balanced by a peer-disconnect");
    });

    it("two addresses of the same node give one link; the parked address takes over when the first drops", { timeout: 20_000, skip: factory.alias ? false : "factory has no alias()" }, async () => {
      const srv = await server();
      const cli = await client(undefined);
      const alias = await factory.alias!(srv);
      cleanups.push(() => alias.close());
      const direct = factory.addressOf(srv);
      assert.notDeepEqual({ host: alias.host, port: alias.port }, direct, "alias must differ from the direct address");
      const srvConnects = record<[PeerInfo]>(srv, "peer-connect");
      const cliConnects = record<[PeerInfo]>(cli, "peer-connect");

      const first = waitFor(cli, "peer-connect", T);
      cli.network.connectTo(direct.host, direct.port);
      await first;
      cli.network.connectTo(alias.host, alias.port);
      const aliasTarget = () => cli.network.dialTargets().find((t) => t.host === alias.host && t.port === alias.port);
      await eventually(() => aliasTarget()?.state === "parked", [cli, srv], "the alias target to be parked");
      assert.equal(cli.network.peers.length, 1);
      assert.equal(srv.network.peers.length, 1);
      assert.equal(srvConnects.events.length, 1);
      assert.equal(cliConnects.events.length, 1);

      // Dropping the first address un-parks the alias.
      const again = waitFor(cli, "peer-connect", T);
      cli.network.disconnectFrom(direct.host, direct.port);
      const [info] = await again;
      assert.equal(info.peerId, peerIdOf(srv));
      await eventually(() => aliasTarget()?.state === "connected" && srv.network.peers.length === 1, [cli, srv], "the alias link");
      assert.equal(cli.network.peers.length, 1);
      srvConnects.stop();
      cliConnects.stop();
    });

    it("a topic mismatch closes the link; the reason reaches the dialer's dial-failed (4001, final)", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(undefined, { topic: "another-topic-entirely" });
      const srvConnects = record(srv, "peer-connect");
      const cliConnects = record(cli, "peer-connect");
      const refused = waitFor(srv, "refused", T, (e) => e.code === ErrorCode.TOPIC_MISMATCH);
      const failed = waitFor(cli, "dial-failed", T);
      const { host, port } = factory.addressOf(srv);
      cli.network.connectTo(host, port);
      const [[event], [refusal]] = await Promise.all([failed, refused]);
      assert.deepEqual(
        { host: event.host, port: event.port, code: event.code, final: event.final },
        { host, port, code: CloseCode.TOPIC_MISMATCH, final: true } satisfies Omit<DialFailedEvent, "reason">,
      );
      assert.match(event.reason, /topic/i);
      assert.match(refusal.reason, /topic/i);
      assert.deepEqual(cli.network.dialTargets(), [], "no further attempts are scheduled");
      assert.equal(srvConnects.events.length, 0);
      assert.equal(cliConnects.events.length, 0);
      assert.equal(srv.network.peers.length, 0);
      assert.equal(cli.network.peers.length, 0);
      srvConnects.stop();
      cliConnects.stop();
    });

    it("server close() is idempotent, closes every link, and nothing fires after it", { timeout: 20_000 }, async () => {
      const srv = await server();
      const c1 = await client(srv);
      const c2 = await client(srv);
      await bothLinked(srv, c1);
      await bothLinked(srv, c2);
      const late = lateEvents(srv);
      const gone1 = waitFor(c1, "peer-disconnect", T, (i) => i.peerId === peerIdOf(srv));
      const gone2 = waitFor(c2, "peer-disconnect", T, (i) => i.peerId === peerIdOf(srv));

      late.closing = true;
      const p1 = srv.close();
      const p2 = srv.close();
      assert.equal(p1, p2, "concurrent close() calls share one promise");
      await withTimeout(Promise.all([p1, p2]), T, "server close");
      await withTimeout(srv.close(), T, "a third close()");
      await Promise.all([gone1, gone2]);

      assert.equal(srv.isClosed, true);
      assert.equal(srv.network.peers.length, 0);
      srv.network.connectTo("127.0.0.1", 9); // no-op after close
      assert.deepEqual(srv.network.dialTargets(), []);
      assert.deepEqual(late.fired, [], "events fired after close()");
    });

    it("client close() is idempotent, the server sees the disconnect, and nothing fires after it", { timeout: 20_000 }, async () => {
      const srv = await server();
      const other = await server();
      const cli = await client(srv);
      connect(cli, other);
      await bothLinked(srv, cli);
      await bothLinked(other, cli);
      const late = lateEvents(cli);
      const gone = waitFor(srv, "peer-disconnect", T, (i) => i.peerId === peerIdOf(cli));
      const gone2 = waitFor(other, "peer-disconnect", T, (i) => i.peerId === peerIdOf(cli));
      late.closing = true;
      await withTimeout(Promise.all([cli.close(), cli.close()]), T, "client close");
      await Promise.all([gone, gone2]);
      await withTimeout(cli.close(), T, "a third close()");
      assert.equal(cli.network.peers.length, 0);
      assert.deepEqual(cli.network.dialTargets(), [], "no dialer survives close()");
      assert.deepEqual(late.fired, [], "events fired after close()");
    });

    it("close() before any link, and while a dial is in flight, resolves and leaves nothing behind", { timeout: 20_000 }, async () => {
      const lonely = await client(undefined);
      await withTimeout(lonely.close(), T, "close without links");
      const srv = await server();
      const cli = await client(undefined);
      const late = lateEvents(cli);
      late.closing = true;
      connect(cli, srv);
      await withTimeout(cli.close(), T, "close during a dial");
      assert.deepEqual(cli.network.dialTargets(), []);
      assert.deepEqual(late.fired, []);
      // The server may or may not have seen the half-open link; either way it ends.
      await eventually(() => srv.network.peers.length === 0, [srv], "server without links");
    });
  });
}

// ---- helpers --------------------------------------------------------------

function peerIdOf(db: ToolDb): string {
  return clientIdOf(db.nodeAddress());
}

/** Both nodes hold a session with each other. */
async function bothLinked(a: ToolDb, b: ToolDb): Promise<void> {
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
async function eventually(cond: () => boolean, dbs: ToolDb[], what: string): Promise<void> {
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
function hookRecorder(db: ToolDb): { calls: HookCalls } {
  const calls: HookCalls = { onConnect: [], onDisconnect: [], onPeerConnect: [], onPeerDisconnect: [] };
  db.onConnect = () => void calls.onConnect.push(Date.now());
  db.onDisconnect = () => void calls.onDisconnect.push(Date.now());
  db.onPeerConnect = (id) => void calls.onPeerConnect.push(id);
  db.onPeerDisconnect = (id) => void calls.onPeerDisconnect.push(id);
  return { calls };
}

function connectLog(db: ToolDb): { connects: number; disconnects: number } {
  const log = { connects: 0, disconnects: 0 };
  db.on("peer-connect", () => void log.connects++);
  db.on("peer-disconnect", () => void log.disconnects++);
  return log;
}

const ALL_EVENTS = ["ready", "connect", "disconnect", "peer-connect", "peer-disconnect", "put", "data", "refused", "dial-failed", "servers", "error"] as const;

/**
 * Listens to every ToolDb event, every hook, and the adapter's own events;
 * anything delivered once `closing` is set is recorded in `fired`.
 */
function lateEvents(db: ToolDb): { closing: boolean; fired: string[] } {
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

// Re-exported for transport-specific test files built on this suite.
export { peerIdOf, bothLinked, eventually, hookRecorder, lateEvents };
