/**
 * Wrong arguments to the API and wrong constructor options: always a
 * ToolDbError with a stable code (INVALID_KEY for keys, INVALID_ARGUMENT for
 * the rest) that names the argument; async methods reject, the constructor
 * throws before it opens a store or a socket; never a TypeError or
 * RangeError, never an unhandled rejection.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { ErrorCode, LevelStore, MapCrdt, MemoryStore, ToolDb, type ToolDbOptions } from "../src/index.js";
import { DHTClient, DHTServer, type DhtNodeOptions } from "../src/entries/discovery.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";
import { signedInNode, typed } from "./helpers/typed-error.js";

const unhandled = collectUnhandledRejections();


describe("API arguments", { timeout: 30_000 }, () => {
  let db: ToolDb;
  before(async () => {
    db = await signedInNode("bad-arguments");
    const settings = new MapCrdt(db.userAccount.getAddress()!);
    settings.SET("theme", "dark");
    await db.putCrdt("settings", settings);
  });
  after(() => db.close());
  afterEach(() => assert.deepEqual(unhandled.splice(0), [], "unhandled rejections"));

  // The bad calls, as JavaScript callers make them.
  const api = () => db as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;

  it("putData refuses a key that is not a string with INVALID_KEY, as getData does", async () => {
    for (const key of [42, {}, null, ""]) {
      await assert.rejects(api().putData!.call(db, key, 1), typed(ErrorCode.INVALID_KEY, /key must be a non-empty string/), String(key));
      await assert.rejects(api().putData!.call(db, key, 1, true), typed(ErrorCode.INVALID_KEY), `${String(key)} namespaced`);
      await assert.rejects(api().getData!.call(db, key), typed(ErrorCode.INVALID_KEY), `getData ${String(key)}`);
    }
    // tool-db 2.6.6's own text (toolDbPut.js), which apps match.
    await assert.rejects(db.putData("a.b", 1), (err: Error) => err.message === "Key cannot include dots!; a.b" && (err as { code?: string }).code === ErrorCode.INVALID_KEY);
  });

  it("a key longer than a record may have (1024 characters, with its user namespace) is INVALID_KEY before anything is written", async () => {
    // Before: written locally, refused by every server, and null from the node's own getData (outside check).
    const long = "k".repeat(1025);
    await assert.rejects(db.putData(long, 1), typed(ErrorCode.INVALID_KEY, /1025 characters, over the 1024/));
    await assert.rejects(db.getData(long), typed(ErrorCode.INVALID_KEY));
    assert.equal(await db.store.get(long), undefined, "nothing stored");
    // The namespace ":<address>." counts: a 1000-character key is too long once namespaced.
    const namespaced = "n".repeat(1000);
    await assert.rejects(db.putData(namespaced, 1, true), typed(ErrorCode.INVALID_KEY, /with its user namespace/));
    await assert.rejects(db.signUp("u".repeat(1023), "pw"), typed(ErrorCode.INVALID_KEY));
    const longest = "m".repeat(1024);
    await db.putData(longest, 7);
    assert.equal(await db.getData(longest, false, 10), 7);
  });

  it("a value with no JSON form (a cycle, a BigInt, undefined, a function) is INVALID_ARGUMENT", async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await assert.rejects(db.putData("c", circular), typed(ErrorCode.INVALID_ARGUMENT, /not serialisable as JSON/));
    await assert.rejects(db.putData("b", 1n), typed(ErrorCode.INVALID_ARGUMENT, /not serialisable as JSON/));
    await assert.rejects(db.putData("u", undefined), typed(ErrorCode.INVALID_ARGUMENT, /JSON/));
    await assert.rejects(db.putData("f", () => 1), typed(ErrorCode.INVALID_ARGUMENT, /JSON/));
    assert.equal(await db.getData("c"), null, "nothing was stored");
  });

  it("putData's options are checked: an object with a whole ack and a finite timeout", async () => {
    await assert.rejects(api().putData!.call(db, "o", 1, false, 5), typed(ErrorCode.INVALID_ARGUMENT, /put options/));
    await assert.rejects(db.putData("o", 1, false, { ack: "x" as unknown as number }), typed(ErrorCode.INVALID_ARGUMENT, /ack/));
    await assert.rejects(db.putData("o", 1, false, { ack: -1 }), typed(ErrorCode.INVALID_ARGUMENT, /ack/));
    await assert.rejects(db.putData("o", 1, false, { ack: 1, timeoutMs: NaN }), typed(ErrorCode.INVALID_ARGUMENT, /timeoutMs/));
  });

  it("putData takes tool-db 2.6.6's fourth argument (a `to` list of peers) and ignores it", async () => {
    const message = await db.putData("to-list", 7, false, ["some-peer"]);
    assert.deepEqual(message.to, []);
    assert.equal(await db.getData("to-list"), 7);
    await api().putData!.call(db, "to-null", 8, false, null); // 2.6.6 took `to || []`
    assert.equal(await db.getData("to-null"), 8);
  });

  it("putCrdt and getCrdt refuse what is not a CRDT, also for a key that holds one", async () => {
    for (const crdt of [{}, null, 5, { type: "MAP" }]) {
      await assert.rejects(api().putCrdt!.call(db, "k", crdt), typed(ErrorCode.INVALID_ARGUMENT, /not a CRDT/), `putCrdt ${String(crdt)}`);
      await assert.rejects(api().getCrdt!.call(db, "settings", crdt), typed(ErrorCode.INVALID_ARGUMENT, /not a CRDT/), `getCrdt ${String(crdt)}`);
    }
    const copy = new MapCrdt(db.userAccount.getAddress()!);
    assert.ok(await db.getCrdt("settings", copy));
    assert.equal((copy.value as Record<string, unknown>).theme, "dark", "a real CRDT still merges");
  });

  it("queries, timeouts, server functions and credentials are checked", async () => {
    await assert.rejects(api().queryKeys!.call(db, 42), typed(ErrorCode.INVALID_ARGUMENT, /prefix must be a string/));
    await assert.rejects(api().getData!.call(db, "k", false, "soon"), typed(ErrorCode.INVALID_ARGUMENT, /timeoutMs/));
    await assert.rejects(api().doFunction!.call(db, 42, {}), typed(ErrorCode.INVALID_ARGUMENT, /name must be a string/));
    assert.throws(() => db.addServerFunction("f", 5 as never), typed(ErrorCode.INVALID_ARGUMENT, /fn must be a function/));
    await assert.rejects(api().signUp!.call(db, "zed", 5), typed(ErrorCode.INVALID_ARGUMENT, /password must be a string/));
    await assert.rejects(api().signIn!.call(db, "zed", 5), typed(ErrorCode.INVALID_ARGUMENT, /password must be a string/));
    assert.throws(() => db.unsubscribeData(42 as never), typed(ErrorCode.INVALID_KEY));
  });

  it("network.connectTo refuses an address that can never work at once, as the peers option does (it was re-dialed forever), without throwing (the guide passes announced peers straight in)", () => {
    const failures: unknown[] = [];
    const refusals: RefusalEvent[] = [];
    db.on("dial-failed", (e) => failures.push(e));
    db.on("refused", (e) => refusals.push(e));
    const bad: Array<[unknown, unknown, RegExp]> = [
      ["127.0.0.1", 70000, /connectTo: port must be a whole number from 1 to 65535, got number 70000/],
      ["127.0.0.1", -1, /connectTo: port .*got number -1/],
      ["127.0.0.1", 0, /connectTo: port/],
      ["127.0.0.1", "abc", /connectTo: port .*got the string "abc"/],
      ["not a host", 9000, /connectTo: host must be a host name or an IP address \(not a URL, host:port or \[IPv6\]\), got the string "not a host"/],
      ["ws://127.0.0.1", 9000, /connectTo: host/],
      ["", 9000, /connectTo: host must be a non-empty string/],
      [undefined, 9000, /connectTo: host/],
    ];
    for (const [host, port, message] of bad) {
      const before = refusals.length;
      assert.doesNotThrow(() => db.network.connectTo(host as string, port as number), `${String(host)}:${String(port)}`);
      assert.equal(refusals.length, before + 1, `one refusal for ${String(host)}:${String(port)}`);
      assert.equal(refusals.at(-1)!.code, ErrorCode.INVALID_ARGUMENT);
      assert.match(refusals.at(-1)!.reason, message);
    }
    assert.deepEqual(db.network.dialTargets(), [], "nothing is dialed");
    assert.deepEqual(failures, []);
  });
});

describe("constructor options", { timeout: 30_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-bad-options-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => assert.deepEqual(unhandled.splice(0), [], "unhandled rejections"));

  const portName = `tooldb-port-${process.pid}`;
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["port 70000", { server: true, port: 70000 }, /option port must be a whole number from 0 to 65535, got number 70000/],
    ["port NaN", { server: true, port: NaN }, /option port/],
    ["port -1", { server: true, port: -1 }, /option port/],
    ["port 1.5", { server: true, port: 1.5 }, /option port/],
    [`port "${portName}" (a Unix socket path to Node)`, { server: true, port: portName }, /option port .*got the string/],
    ["peers as a string", { peers: "127.0.0.1:1" }, /option peers must be an array/],
    // Before: taken, and dialed as ws://[ws://127.0.0.10]:9000 (an unhandled rejection in server selection).
    ["a URL as a peer's host", { peers: [{ host: "ws://127.0.0.10", port: 9000 }] }, /option peers\[0\]\.host must be a host name or an IP address \(not a URL, host:port or \[IPv6\]\), got the string "ws:\/\/127\.0\.0\.10"/],
    ["host:port as a peer's host", { peers: [{ host: "example.org:9000", port: 9000 }] }, /option peers\[0\]\.host/],
    ["a path in a peer's host", { peers: [{ host: "127.0.0.9/x", port: 9000 }] }, /option peers\[0\]\.host/],
    ["a bracketed IPv6 peer host", { peers: [{ host: "[::1]", port: 9000 }] }, /option peers\[0\]\.host/],
    ["a peer without a port", { peers: [{ host: "127.0.0.1" }] }, /option peers\[0\]\.port/],
    ["a peer with a number host", { peers: [{ host: 5, port: 1 }] }, /option peers\[0\]\.host/],
    ["storageAdapter 5", { storageAdapter: 5 }, /option storageAdapter must be a class/],
    ["userAdapter {}", { userAdapter: {} }, /option userAdapter must be a class/],
    ["networkAdapter []", { networkAdapter: [] }, /option networkAdapter/],
    ["topic 5", { topic: 5 }, /option topic must be a non-empty string, got number 5/],
    ["topic empty", { topic: "" }, /option topic/],
    ["storageName 5", { storageName: 5 }, /option storageName/],
    ["publicUrl 5", { server: true, port: 0, publicUrl: 5 }, /option publicUrl must be a string/],
    ["server \"false\"", { server: "false" }, /option server must be true or false/],
    ["pow \"x\"", { pow: "x" }, /option pow/],
    ["wait -1", { wait: -1 }, /option wait/],
    ["unresponsivePenalty 0", { unresponsivePenalty: 0 }, /option unresponsivePenalty must be a finite number of ms > 0, got number 0/],
    ["unresponsivePenalty NaN", { unresponsivePenalty: NaN }, /option unresponsivePenalty must be a finite number of ms > 0/],
    ["dedupCapacity 0", { dedupCapacity: 0 }, /option dedupCapacity/],
    ["rangeSync.readsPerMessage 0", { server: true, port: 0, rangeSync: { readsPerMessage: 0 } }, /option rangeSync\.readsPerMessage/],
    ["rangeSync.refreshMs -1", { server: true, port: 0, rangeSync: { refreshMs: -1 } }, /option rangeSync\.refreshMs must be a finite number of ms >= 0, got number -1/],
    ["rangeSync.budget 5", { server: true, port: 0, rangeSync: { budget: 5 } }, /option rangeSync\.budget must be an object/],
    ["rangeSync.budget.windowMs NaN", { server: true, port: 0, rangeSync: { budget: { windowMs: NaN } } }, /option rangeSync\.budget\.windowMs must be a finite number >= 0, got/],
    ["rangeSync.budget.windowMs 0", { server: true, port: 0, rangeSync: { budget: { windowMs: 0 } } }, /option rangeSync\.budget\.windowMs must be a finite number of ms > 0/],
    ["rangeSync.budget.servesPerItem \"2\"", { server: true, port: 0, rangeSync: { budget: { servesPerItem: "2" } } }, /option rangeSync\.budget\.servesPerItem/],
    ["rangeSync.budget.rounds 1.5", { server: true, port: 0, rangeSync: { budget: { rounds: 1.5 } } }, /option rangeSync\.budget\.rounds must be a whole number >= 0/],
    ["rangeSync.budget.maxPeers 0", { server: true, port: 0, rangeSync: { budget: { maxPeers: 0 } } }, /option rangeSync\.budget\.maxPeers must be a whole number >= 1/],
    ["broadcast.mode", { broadcast: { mode: "gossip" } }, /option broadcast\.mode/],
    ["limits 5", { limits: 5 }, /option limits must be an object/],
    // Limits at which a server serves nobody (the CLI refuses them as flags too).
    ["limits.messageBurst 0", { limits: { messageBurst: 0 } }, /limit messageBurst must be a whole number >= 1 \(or Infinity\), got number 0/],
    ["limits.maxOutstanding 0", { limits: { maxOutstanding: 0 } }, /limit maxOutstanding must be a whole number >= 1/],
    ["limits.maxConnections 2.5", { limits: { maxConnections: 2.5 } }, /limit maxConnections must be a whole number >= 1 \(or Infinity\), got number 2\.5/],
    ["limits.maxReceiveBuffered 0", { limits: { maxReceiveBuffered: 0 } }, /limit maxReceiveBuffered must be a whole number >= 1/],
    ["limits.messageRate 0", { limits: { messageRate: 0 } }, /limit messageRate must be above 0/],
  ];
  for (const [name, options, message] of cases) {
    it(`refuses ${name} at once with INVALID_ARGUMENT`, () => {
      assert.throws(() => new ToolDb({ topic: "bad-options", ...options } as Partial<ToolDbOptions>), typed(ErrorCode.INVALID_ARGUMENT, message));
    });
  }

  it('ports given as digit strings (process.env.PORT), which tool-db 2.6.6 took, are taken as numbers', async () => {
    const db = new ToolDb({ server: true, host: "127.0.0.1", port: "0" as unknown as number, peers: [{ host: "127.0.0.1", port: "9" as unknown as number }], storageAdapter: MemoryStore, topic: "digit-ports" });
    try {
      await db.ready;
      assert.equal(db.options.port, 0);
      assert.equal(db.options.peers[0]!.port, 9);
      // IPv6 literals and names stay hosts.
      for (const host of ["::1", "fe80::1", "db.example.org"]) assert.doesNotThrow(() => new ToolDb({ topic: "hosts", peers: [{ host, port: 1 }], storageAdapter: MemoryStore }).close(), host);
      assert.equal(typeof db.network.port, "number");
    } finally {
      await db.close();
    }
  });

  it("a port string never becomes a Unix socket file", () => {
    assert.equal(existsSync(portName), false);
  });

  it("a refused option opens nothing: no store directory is made", () => {
    const storageName = join(dir, "data");
    assert.throws(() => new ToolDb({ topic: "bad-options", server: true, port: 70000, storageAdapter: LevelStore, storageName }), typed(ErrorCode.INVALID_ARGUMENT));
    assert.deepEqual(readdirSync(dir), []);
  });

  it("good options still start a server", async () => {
    const db = new ToolDb({ topic: "bad-options", server: true, host: "127.0.0.1", port: 0, peers: [], maxRetries: Infinity });
    try {
      await db.ready;
      assert.ok(db.network.port);
    } finally {
      await db.close();
    }
  });
});

describe("DHTServer and DHTClient options", { timeout: 30_000 }, () => {
  afterEach(() => assert.deepEqual(unhandled.splice(0), [], "unhandled rejections"));
  // Never the public DHT: every case names a dead private bootstrap unless the bootstrap is the wrong option.
  const bootstrap = ["127.0.0.1:1"];
  const cases: Array<[string, DhtNodeOptions, RegExp]> = [
    // Before: taken by the constructor, which opened the WebSocket port; start() rejected and the port stayed open.
    ['bootstrap ["nonsense"]', { bootstrap: ["nonsense"] }, /bad bootstrap address 'nonsense'/],
    ["bootstrap as a string", { bootstrap: "127.0.0.1:1" as never }, /bootstrap must be an array/],
    ["bootstrap port 70000", { bootstrap: ["127.0.0.1:70000"] }, /bad bootstrap address/],
    ["dhtPort 70000", { bootstrap, dhtPort: 70000 }, /option dhtPort must be a whole number from 0 to 65535, got number 70000/],
    ["dhtHost 5", { bootstrap, dhtHost: 5 as never }, /option dhtHost/],
    ["discovery.fastInterval 0", { bootstrap, discovery: { fastInterval: 0 } }, /fastInterval must be a positive number/],
    ["maxConnections 0", { bootstrap, maxConnections: 0 }, /option maxConnections must be a whole number >= 1, got number 0/],
    ["dialRetries -1", { bootstrap, dialRetries: -1 }, /option dialRetries/],
    ["penaltyMs NaN", { bootstrap, penaltyMs: NaN }, /option penaltyMs must be a finite number of ms >= 0/],
    ["firstContactTimeoutMs 0", { bootstrap, firstContactTimeoutMs: 0 }, /option firstContactTimeoutMs must be a finite number of ms > 0/],
    ["mesh.minLinks 0", { bootstrap, mesh: { minLinks: 0 } }, /mesh\.minLinks must be an integer >= 1/],
    ["a URL in mechanisms.peers", { bootstrap, mechanisms: { peers: [{ host: "ws://127.0.0.1", port: 9000 }] } }, /option mechanisms\.peers\[0\]\.host must be a host name or an IP address/],
    ["hyperswarm bootstrap port 0", { bootstrap, hyperswarm: { bootstrap: ["127.0.0.1:0"] } }, /HyperDHT bootstrap '127\.0\.0\.1:0': port must be a whole number from 1 to 65535/],
  ];
  for (const [name, options, message] of cases) {
    it(`DHTServer refuses ${name} in the constructor with INVALID_ARGUMENT, before it opens a store or a port`, () => {
      const dir = mkdtempSync(join(tmpdir(), "tooldb-bad-dht-options-"));
      try {
        assert.throws(() => new DHTServer("bad-dht-options", "127.0.0.1", 0, { ...options, dataDir: join(dir, "data") }), typed(ErrorCode.INVALID_ARGUMENT, message));
        assert.deepEqual(readdirSync(dir), [], "no store directory is made");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("DHTClient refuses them too; a wrong bootstrap is not checked when the mainline DHT is off", async () => {
    assert.throws(() => new DHTClient("bad-dht-options", { bootstrap: ["nonsense"] }), typed(ErrorCode.INVALID_ARGUMENT, /bad bootstrap address/));
    const client = new DHTClient("bad-dht-options", { bootstrap: ["nonsense"], mechanisms: { mainline: false } });
    await client.stop();
  });
});
