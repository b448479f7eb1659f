/**
 * tool-db 2.6.6's lifecycle events, hooks and error texts, with listeners
 * written for 2.6.6 run unchanged on tooldb-dht and, where 2.6.6 can run
 * them, on a real tool-db 2.6.6 node too.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CounterCrdt, type RecordMessage, ToolDb } from "../src/index.js";
import { closeAll, FAST, portOf, startServer } from "./helpers/nodes.js";
import { startLegacyNode } from "./interop/legacy-node.js";
import { withTimeout } from "./helpers/wait.js";

const T = 10_000;
/** Every wait inside is bounded by T; this bounds the test as a whole. */
const TEST_TIMEOUT = 120_000;

/** What a 2.6.6 app does with the connection hooks: note the peer, then check it in onConnect. */
function hookOrder(db: { onPeerConnect: (id: string) => void; onConnect: () => void }): Promise<string[]> {
  const calls: string[] = [];
  return new Promise((resolve) => {
    db.onPeerConnect = (id) => calls.push(`peer:${typeof id}`);
    db.onConnect = () => {
      calls.push("connect");
      resolve([...calls]);
    };
  });
}

/** Listeners as an app wrote them for tool-db 2.6.6 (message.data.k; the peer id beside each message). */
function listenLike266(db: { on(event: string, fn: (...args: any[]) => void): unknown }) {
  const seen = { put: [] as string[], verified: [] as string[], message: [] as string[], crdtput: [] as string[] };
  db.on("put", (message: { data: { k: string } }) => seen.put.push(message.data.k));
  db.on("verified", (message: { data: { k: string } }) => seen.verified.push(message.data.k));
  db.on("crdtput", (message: { data: { k: string } }) => seen.crdtput.push(message.data.k));
  db.on("message", (message: { type: string }, peerId: unknown) => {
    if (typeof peerId === "string" && peerId.length > 0) seen.message.push(message.type);
  });
  return seen;
}

describe("tool-db 2.6.6 events, hooks and error texts", () => {
  it("`put`, `verified`, `crdtput` and `message` listeners written for 2.6.6 work unchanged", { timeout: TEST_TIMEOUT }, async () => {
    const app = async (server: any, client: any) => {
      const seen = listenLike266(server);
      const verified = new Promise<void>((resolve) => server.on("verified", (m: { data: { k: string } }) => m.data.k === "greeting" && resolve()));
      await client.putData("greeting", "hello");
      await withTimeout(verified, T, "the put verified on the server");
      return seen;
    };
    const legacyServer = await startLegacyNode(`events-${process.pid}`, { server: true });
    const legacyClient = await startLegacyNode(`events-${process.pid}`, { peers: [{ host: "127.0.0.1", port: legacyServer.net.port! }] });
    let theirs;
    try {
      theirs = await app(legacyServer.db, legacyClient.db);
    } finally {
      await legacyClient.close();
      await legacyServer.close();
    }
    const server = await startServer();
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      await withTimeout(new Promise<void>((resolve) => client.once("connect", () => resolve())), T, "client link");
      const ours = await app(server, client);
      assert.deepEqual(theirs.put, ["greeting"]);
      assert.deepEqual(ours.put, theirs.put);
      assert.deepEqual(ours.verified, theirs.verified);
      assert.ok(theirs.message.includes("put") && ours.message.includes("put"), `messages: ${theirs.message} / ${ours.message}`);

      // The record is reachable in the new shape: message.data; `data` still carries the record itself.
      const [message, from] = await Promise.all([
        new Promise<[RecordMessage, string | undefined]>((resolve) => server.once("put", (m, f) => resolve([m, f]))),
        client.putData("second", { n: 2 }),
      ]).then(([got]) => got);
      assert.equal(message.type, "put");
      assert.equal(typeof message.id, "string");
      assert.deepEqual(message.data.v, { n: 2 });
      assert.equal(from, client.nodeAddress().slice(-20), "the id of the peer it came from");

      // A CRDT change list: `crdtput` as well as `put` (2.6.6 emits only `crdtput` for those).
      const counter = new CounterCrdt(client.userAccount.getAddress()!);
      counter.ADD(3);
      const crdt = new Promise<RecordMessage>((resolve) => server.once("crdtput", (m) => resolve(m)));
      await client.putCrdt("count", counter);
      const got = await withTimeout(crdt, T, "crdtput");
      assert.equal(got.type, "crdtPut");
      assert.equal(got.data.k, "count");
      // A local write is a `put` too (2.6.6 emits nothing for its own writes), with no peer.
      const local = new Promise<[RecordMessage, string | undefined]>((resolve) => client.once("put", (m, f) => resolve([m, f])));
      await client.putData("mine", 1);
      const [own, none] = await local;
      assert.equal(own.data.k, "mine");
      assert.equal(none, undefined);
    } finally {
      await closeAll(client, server);
    }
  });

  it("`data` fires for a getData that finds a record, as on 2.6.6, and once for a read that fetched it", { timeout: TEST_TIMEOUT }, async () => {
    // An app that renders from on("data") and loads with getData (an outside check found ours silent).
    const app = async (db: any) => {
      const seen: string[] = [];
      db.on("data", (record: { k: string; v: unknown }) => seen.push(`${record.k}=${String(record.v)}`));
      await db.putData("profile", "ann");
      seen.length = 0;
      const value = await db.getData("profile", false, 200);
      return { value, seen };
    };
    const legacy = await startLegacyNode(`data-read-${process.pid}`);
    let theirs;
    try {
      theirs = await app(legacy.db);
    } finally {
      await legacy.close();
    }
    const ours = new ToolDb({ topic: "test" });
    try {
      assert.deepEqual(await app(ours), theirs);
      assert.deepEqual(theirs, { value: "ann", seen: ["profile=ann"] });
    } finally {
      await ours.close();
    }
    // A client without the record: the server's answer changes its store, and that is the one `data`.
    const server = await startServer();
    const writer = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    const reader = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      await Promise.all([writer.ready, reader.ready]);
      await writer.putData("shared", 1, false, { ack: 1 });
      await withTimeout(new Promise((r) => (reader.isConnected ? r(undefined) : reader.once("connect", () => r(undefined)))), T, "reader linked");
      const seen: string[] = [];
      reader.on("data", (record) => seen.push(record.k));
      assert.equal(await reader.getData("shared", false, T), 1);
      assert.deepEqual(seen, ["shared"]);
      assert.equal(await reader.getData("shared", false, T), 1);
      assert.deepEqual(seen, ["shared", "shared"], "a second read of the stored record emits it again");
    } finally {
      await closeAll(writer, reader, server);
    }
  });

  it("`init` fires after ready with the user's address, as on 2.6.6", { timeout: TEST_TIMEOUT }, async () => {
    const db = new ToolDb({ topic: "test" });
    const order: string[] = [];
    db.on("ready", () => order.push("ready"));
    const init = new Promise<string | undefined>((resolve) => db.on("init", (address) => resolve(address)));
    try {
      const address = await withTimeout(init, T, "init");
      order.push("init");
      assert.deepEqual(order, ["ready", "init"]);
      assert.equal(address, db.userAccount.getAddress());
      assert.match(address ?? "", /^[A-Za-z0-9_-]{86}$/);
    } finally {
      await db.close();
    }
    const legacy = await startLegacyNode(`init-${process.pid}`);
    try {
      // 2.6.6 emitted it during start-up; its argument is the same kind of address.
      assert.match(legacy.db.userAccount.getAddress() ?? "", /^[A-Za-z0-9_-]{86}$/);
    } finally {
      await legacy.close();
    }
  });

  it("onPeerConnect comes before onConnect, on ours as on a 2.6.6 client", { timeout: TEST_TIMEOUT }, async () => {
    const server = await startServer();
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      const ours = await withTimeout(hookOrder(client), T, "our hooks");
      assert.deepEqual(ours, ["peer:string", "connect"]);
    } finally {
      await closeAll(client, server);
    }
    const legacyServer = await startLegacyNode(`hooks-${process.pid}`, { server: true });
    try {
      const t = await import("tool-db");
      const u = await import("@tool-db/ecdsa-user");
      const { ToolDbWsAdapter, MemoryToolDbStore } = await import("./interop/tooldb-ws-adapter.js");
      const legacyClient = new t.default.ToolDb({
        topic: `hooks-${process.pid}`,
        server: false,
        peers: [{ host: "127.0.0.1", port: legacyServer.net.port! }],
        networkAdapter: ToolDbWsAdapter,
        storageAdapter: MemoryToolDbStore,
        userAdapter: u.default.default,
        storageName: `hooks-client-${process.pid}`,
        pow: 0,
      });
      try {
        const theirs = await withTimeout(hookOrder(legacyClient as never), T, "2.6.6 hooks");
        assert.deepEqual(theirs, ["peer:string", "connect"], "2.6.6 calls onPeerConnect first");
      } finally {
        await (legacyClient.network as unknown as { close(): Promise<void> }).close();
        await legacyClient.close();
      }
    } finally {
      await legacyServer.close();
    }
  });

  it("a server function that throws returns 2.6.6's text (\"Error: Invalid arguments\")", { timeout: TEST_TIMEOUT }, async () => {
    const fn = async (args: { n?: unknown }) => {
      if (typeof args?.n !== "number") throw new Error("Invalid arguments");
      return args.n * 2;
    };
    const legacyServer = await startLegacyNode(`fn-${process.pid}`, { server: true });
    const legacyClient = await startLegacyNode(`fn-${process.pid}`, { peers: [{ host: "127.0.0.1", port: legacyServer.net.port! }] });
    const server = await startServer();
    const client = new ToolDb({ topic: "test", ...FAST, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    try {
      legacyServer.db.addServerFunction("double", fn);
      server.addServerFunction("double", fn);
      await withTimeout(new Promise<void>((resolve) => client.once("connect", () => resolve())), T, "client link");
      const theirs = await legacyClient.db.doFunction("double", { n: "x" });
      const ours = await client.doFunction("double", { n: "x" });
      assert.deepEqual(theirs, { code: "ERR", return: "Error: Invalid arguments" });
      assert.deepEqual(ours, theirs);
      assert.deepEqual(await client.doFunction("double", { n: 2 }), { code: "OK", return: 4 });
    } finally {
      await closeAll(client, server);
      await legacyClient.close();
      await legacyServer.close();
    }
  });
});
