/**
 * DHTServer / DHTClient (mainline DHT on a local bootstrap node) and the
 * Hyperswarm transport (a local HyperDHT testnet) under lifecycle races:
 * stop() right after construction, while start() runs, while the DHT
 * bootstraps and announces, while a link is being made, twice at once and
 * again after it resolved. Each stop resolves, leaves no handle, lets no
 * event out after it, closes the store, and later calls reject with CLOSED.
 * A start() under way settles before stop() resolves: resolved when it had
 * begun the DHT join as stop() came, else rejected with CLOSED.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DHTClient, DHTServer, Discovery, MergedDiscovery, PeerCache, startBootstrapNode, type BootstrapNode, type DhtNodeOptions } from "../src/entries/discovery.js";
import { ErrorCode, LevelStore, MemoryStore, ToolDb } from "../src/index.js";
import { silentUdpPort } from "./helpers/dht-testnet.js";
import { hyperTestnet, swarmOn, type Testnet } from "./helpers/hyperdht-testnet.js";
import { NETWORK_EVENTS, TOOLDB_EVENTS, activeResources, assertNoLeftovers, settlesWithin, watchEmits, turns } from "./helpers/lifecycle-probe.js";
import { FAST } from "./helpers/nodes.js";
import { typed } from "./helpers/typed-error.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const unhandled = collectUnhandledRejections();
const STOP_MS = 5000;
const DISCOVERY_EVENTS = ["peer", "listening", "ready", "warning", "failure", "announced", "lookup"] as const;
const MERGED_EVENTS = ["peer", "settled", "mechanism-failed"] as const;

let bootstrapNode: BootstrapNode;
let testnet: Testnet;
let dir: string;
before(async () => {
  bootstrapNode = await startBootstrapNode({ host: "127.0.0.1", port: 0, timeout: 500 });
  testnet = await hyperTestnet(3);
  dir = await mkdtemp(join(tmpdir(), "tooldb-lifecycle-dht-"));
});
after(async () => {
  await bootstrapNode.close();
  await testnet.destroy();
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file");
});

function options(extra: DhtNodeOptions = {}): DhtNodeOptions {
  const { address, port } = { address: bootstrapNode.address().host, port: bootstrapNode.address().port };
  return {
    bootstrap: [`${address}:${port}`],
    dhtHost: "127.0.0.1",
    discovery: { fastInterval: 50, slowInterval: 2000, jitter: 0, timeout: 500 },
    db: { ...FAST, storageAdapter: MemoryStore },
    ...extra,
  };
}

/** Whether start() had got past `ready` and begun the DHT join (its merged discovery exists). */
function joinBegun(node: DHTServer | DHTClient): boolean {
  try {
    return node.merged !== undefined;
  } catch {
    return false;
  }
}

/** The stages of start() a stop() is thrown at. */
type Stage = "at construction" | "with start() just called" | `turn ${number} of start()` | "right after start()" | "after the first announce or lookup";
const STAGES: Stage[] = ["at construction", "with start() just called", "turn 1 of start()", "turn 3 of start()", "turn 8 of start()", "right after start()", "after the first announce or lookup"];

async function stopRace(make: () => DHTServer | DHTClient, stage: Stage): Promise<DHTServer | DHTClient> {
  const handles = activeResources();
  const node = make();
  const db = watchEmits(node.db as never, TOOLDB_EVENTS);
  const net = watchEmits(node.db.network as never, NETWORK_EVENTS);
  let stopped = false;
  const lateHooks: string[] = [];
  node.onPeerFound = () => void (stopped && lateHooks.push("onPeerFound"));
  node.onPeerConnected = () => void (stopped && lateHooks.push("onPeerConnected"));
  node.onPeerDisconnected = () => void (stopped && lateHooks.push("onPeerDisconnected"));
  node.onMechanismFailed = () => void (stopped && lateHooks.push("onMechanismFailed"));
  let started: Promise<"started" | "closed"> | undefined;
  let stopResolved = false;
  let startSettledFirst: boolean | undefined;
  if (stage !== "at construction") {
    const settled = () => (startSettledFirst = !stopResolved);
    started = node.start().then(
      () => (settled(), "started" as const),
      (err: unknown) => (settled(), typed(ErrorCode.CLOSED)(err), "closed" as const),
    );
  }
  if (stage.startsWith("turn ")) await turns(Number(stage.split(" ")[1]));
  if (stage === "right after start()" || stage === "after the first announce or lookup") await settlesWithin(started!, STOP_MS, "start");
  let discovery: { closed(): void; late: string[] } | undefined;
  let merged: { closed(): void; late: string[] } | undefined;
  if (node.discovery) {
    discovery = watchEmits(node.discovery as never, DISCOVERY_EVENTS);
    merged = watchEmits(node.merged as never, MERGED_EVENTS);
  }
  if (stage === "after the first announce or lookup") {
    const first = new Promise<void>((resolve) => {
      const done = () => (node.discovery!.off("announced", done), node.discovery!.off("lookup", done), resolve());
      node.discovery!.on("announced", done);
      node.discovery!.on("lookup", done);
    });
    await settlesWithin(first, STOP_MS, "a first announce or lookup");
  }
  const begun = joinBegun(node); // what start() had done when stop() came decides how it ends
  await settlesWithin(Promise.all([node.stop(), node.stop()]).then(() => (stopResolved = true)), STOP_MS, `stop ${stage}`);
  for (const w of [db, net, discovery, merged]) w?.closed();
  stopped = true;
  await settlesWithin(node.stop(), STOP_MS, "a third stop");
  if (started) {
    // The contract: start() settles before stop() resolves, resolved iff it had begun the DHT join, else CLOSED.
    assert.equal(startSettledFirst, true, "start() settled before stop() resolved");
    assert.equal(await settlesWithin(started, STOP_MS, "start() after stop"), begun ? "started" : "closed");
    if (stage === "with start() just called") assert.equal(begun, false);
    if (stage === "right after start()" || stage === "after the first announce or lookup") assert.equal(begun, true);
  }
  await assert.rejects(node.start(), typed(ErrorCode.CLOSED), "start() after stop()");
  assert.equal(node.db.isClosed, true, "the node's ToolDb is closed");
  await assertNoLeftovers(handles, `stop ${stage}`);
  assert.deepEqual(db.late, [], "no ToolDb event after stop");
  assert.deepEqual(net.late, [], "no network event after stop");
  assert.deepEqual(discovery?.late ?? [], [], "no discovery event after stop");
  assert.deepEqual(merged?.late ?? [], [], "no merged discovery event after stop");
  assert.deepEqual(lateHooks, [], "no hook called after stop");
  await assert.rejects(node.db.putData("k", 1), typed(ErrorCode.CLOSED));
  await assert.rejects(node.db.getData("k", false, 50), typed(ErrorCode.CLOSED));
  await assert.rejects(node.db.subscribeData("k"), typed(ErrorCode.CLOSED));
  await assert.rejects(node.db.signIn("someone", "password-1"), typed(ErrorCode.CLOSED));
  return node;
}

describe("DHTServer on a local mainline bootstrap node: stop races", { timeout: 120_000 }, () => {
  for (const stage of STAGES) {
    it(`stop ${stage}`, async () => {
      await stopRace(() => new DHTServer("races-dht", "127.0.0.1", 0, options()), stage);
    });
  }
});

describe("DHTServer whose mainline bootstrap never answers", { timeout: 60_000 }, () => {
  for (const stage of ["turn 3 of start()", "right after start()"] as const) {
    it(`stop ${stage} (stuck bootstrapping)`, async () => {
      const dead = [`127.0.0.1:${await silentUdpPort()}`];
      await stopRace(() => new DHTServer("races-dead", "127.0.0.1", 0, options({ bootstrap: dead })), stage);
    });
  }
});

describe("DHTClient on a local mainline bootstrap node: stop races", { timeout: 120_000 }, () => {
  for (const stage of STAGES) {
    it(`stop ${stage}`, async () => {
      await stopRace(() => new DHTClient("races-dht", options()), stage);
    });
  }

  it("stop while dialing a server the DHT found (a connect in flight)", async () => {
    const server = new DHTServer("races-dht-link", "127.0.0.1", 0, options());
    await server.start();
    try {
      const handles = activeResources();
      const client = new DHTClient("races-dht-link", options());
      const late = watchEmits(client.db as never, TOOLDB_EVENTS);
      await client.start();
      // The peering dials a candidate as soon as discovery reports it: stop then.
      await settlesWithin(new Promise<void>((resolve) => client.merged.on("peer", () => queueMicrotask(resolve))), 10_000, "the server to be found");
      await settlesWithin(Promise.all([client.stop(), client.stop()]), STOP_MS, "stop during a connect");
      late.closed();
      await settlesWithin(client.stop(), STOP_MS, "a third stop");
      await assertNoLeftovers(handles, "stop during a connect");
      assert.deepEqual(late.late, []);
    } finally {
      await server.stop();
    }
  });
});

describe("Discovery (mainline DHT) on a local bootstrap node: destroy races", { timeout: 60_000 }, () => {
  const events = ["at construction", "turn 1", "turn 3", "listening", "ready", "announced"] as const;
  for (const when of events) {
    it(`destroy ${when === "at construction" || when.startsWith("turn") ? when : `on its first "${when}"`}: resolves, twice and again, silent, nothing left; a join after it is CLOSED`, async () => {
      const handles = activeResources();
      const { host, port } = bootstrapNode.address();
      const d = new Discovery({ bootstrap: [`${host}:${port}`], host: "127.0.0.1", timeout: 500, fastInterval: 50 });
      const reached = when === "at construction" || when.startsWith("turn") ? undefined : new Promise<void>((resolve) => d.once(when as "listening" | "ready" | "announced", () => resolve()));
      d.join("races-discovery", 7001);
      if (when.startsWith("turn ")) await turns(Number(when.split(" ")[1]));
      if (reached) await settlesWithin(reached, STOP_MS, `the first "${when}"`);
      const late = watchEmits(d as never, DISCOVERY_EVENTS);
      await settlesWithin(Promise.all([d.destroy(), d.destroy()]), STOP_MS, `destroy ${when}`);
      late.closed();
      await settlesWithin(d.destroy(), STOP_MS, "a third destroy");
      const joined = new Promise<unknown>((resolve) => d.join("races-discovery", 7002, resolve));
      assert.ok(typed(ErrorCode.CLOSED)(await settlesWithin(joined, STOP_MS, "a join after destroy")));
      await assertNoLeftovers(handles, `destroy ${when}`);
      assert.deepEqual(late.late, []);
    });
  }
});

describe("DHTServer whose ToolDb is closed by hand during start()", { timeout: 30_000 }, () => {
  it("start() rejects with CLOSED and leaves no DHT socket or timer behind (it ran the DHT for a closed node until stop())", async () => {
    const handles = activeResources();
    const node = new DHTServer("races-db-closed", "127.0.0.1", 0, options());
    const started = node.start();
    await settlesWithin(node.db.close(), STOP_MS, "the ToolDb's close");
    await assert.rejects(settlesWithin(started, STOP_MS, "start"), typed(ErrorCode.CLOSED));
    assert.equal(node.discovery, undefined, "no mainline DHT was started");
    await assertNoLeftovers(handles, "start after the ToolDb closed");
    await settlesWithin(node.stop(), STOP_MS, "stop");
  });
});

describe("DHTServer with a LevelDB dataDir: the store is closed whenever stop() comes", { timeout: 120_000 }, () => {
  for (const stage of ["at construction", "turn 3 of start()", "right after start()"] as const) {
    it(`stop ${stage}: the directory reopens and keeps what was stored`, async () => {
      const dataDir = join(dir, stage.replaceAll(" ", "-").replace(/[()]/g, ""));
      const first = new DHTServer("races-level", "127.0.0.1", 0, options({ dataDir, db: FAST }));
      await first.start();
      await first.db.anonSignIn();
      await first.db.putData("kept", "yes");
      await first.stop();
      await stopRace(() => new DHTServer("races-level", "127.0.0.1", 0, options({ dataDir, db: FAST })), stage);
      const again = new ToolDb({ topic: "races-level", storageAdapter: (first.db.options.storageAdapter), storageName: dataDir });
      await settlesWithin(again.ready, STOP_MS, "reopening the directory");
      assert.equal(await again.getData("kept", false, 50), "yes");
      await again.close();
    });
  }
});

describe("HyperswarmNetwork on a local HyperDHT testnet: close races", { timeout: 120_000 }, () => {
  for (const server of [true, false]) {
    for (const when of ["at construction", "turn 1", "turn 3", "turn 8", "after ready", "after the topic is flushed"] as const) {
      it(`${server ? "server" : "client"}: close ${when}`, async () => {
        const handles = activeResources();
        const db = new ToolDb({ topic: "races-swarm", server, ...FAST, networkAdapter: swarmOn(testnet) });
        const node = watchEmits(db as never, TOOLDB_EVENTS);
        const net = watchEmits(db.network as never, NETWORK_EVENTS);
        if (when.startsWith("turn ")) await turns(Number(when.split(" ")[1]));
        if (when.startsWith("after")) await settlesWithin(db.ready, STOP_MS, "ready");
        if (when === "after the topic is flushed") await settlesWithin((db.network as unknown as { joinedPromise: Promise<void> }).joinedPromise, STOP_MS, "the join");
        await settlesWithin(Promise.all([db.close(), db.close()]), STOP_MS, `close ${when}`);
        node.closed();
        net.closed();
        await settlesWithin(db.close(), STOP_MS, "a third close");
        await assertNoLeftovers(handles, `close ${when}`);
        assert.deepEqual(node.late, []);
        assert.deepEqual(net.late, []);
        await assert.rejects(db.putData("k", 1), typed(ErrorCode.CLOSED));
      });
    }
  }

  it("a server whose HyperDHT bootstrap never answers (stuck bootstrapping and announcing): close resolves, nothing left", async () => {
    const dead = [{ host: "127.0.0.1", port: await silentUdpPort() }];
    const handles = activeResources();
    const db = new ToolDb({ topic: "races-swarm-dead", server: true, ...FAST, networkAdapter: swarmOn(testnet, { bootstrap: dead }) });
    await settlesWithin(db.ready, STOP_MS, "ready");
    await settlesWithin(Promise.all([db.close(), db.close()]), STOP_MS, "close while bootstrapping");
    await assertNoLeftovers(handles, "close while bootstrapping");
  });

  for (const closing of ["client", "server"] as const) {
    it(`the ${closing} closes as a swarm connection comes up (before the handshake)`, async () => {
      const handles = activeResources();
      const server = new ToolDb({ topic: "races-swarm-link", server: true, ...FAST, networkAdapter: swarmOn(testnet) });
      const client = new ToolDb({ topic: "races-swarm-link", ...FAST, networkAdapter: swarmOn(testnet) });
      const closer = closing === "client" ? client : server;
      const other = closer === client ? server : client;
      try {
        await settlesWithin(Promise.all([server.ready, client.ready]), STOP_MS, "ready");
        const late = watchEmits(closer as never, TOOLDB_EVENTS);
        const swarm = (closer.network as unknown as { swarm: { once(e: "connection", l: () => void): void } }).swarm;
        await settlesWithin(new Promise<void>((resolve) => swarm.once("connection", () => resolve())), 10_000, "a swarm connection");
        await settlesWithin(Promise.all([closer.close(), closer.close()]), STOP_MS, "close as a swarm connection comes up");
        late.closed();
        await settlesWithin(closer.close(), STOP_MS, "a third close");
        assert.deepEqual(late.late, []);
        await assert.rejects(closer.putData("k", 1), typed(ErrorCode.CLOSED));
      } finally {
        await Promise.all([other.close(), closer.close()]);
      }
      await assertNoLeftovers(handles, `the ${closing} closed as a swarm connection came up`);
    });
  }

  it("a DHTServer with the Hyperswarm transport too: stop during start", async () => {
    await stopRace(() => new DHTServer("races-both", "127.0.0.1", 0, options({ hyperswarm: { bootstrap: testnet.bootstrap, dhtHost: "127.0.0.1" } })), "turn 3 of start()");
  });
});

describe("MergedDiscovery: a second stop() resolves only once everything stopped", { timeout: 30_000 }, () => {
  it("stop twice at once over a peer cache on LevelDB: when the second resolves, the directory is free to reopen", async () => {
    const path = join(dir, "merged-peers");
    const merged = new MergedDiscovery("races-merged", [new PeerCache(new LevelStore(undefined, path))]);
    await merged.start();
    let firstDone = false;
    void merged.stop().then(() => (firstDone = true));
    await settlesWithin(merged.stop(), STOP_MS, "the second stop");
    assert.ok(firstDone, "the second stop() resolved before the first had finished");
    const again = new LevelStore(undefined, path); // LevelDB's lock: opens only once the cache's store is closed
    await settlesWithin(again.ready, STOP_MS, "reopening the peer cache's directory");
    await again.close();
  });
});
