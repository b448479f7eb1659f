/**
 * Reading a key again over one link to a tool-db 2.6.6 server. 2.6.6 sends a
 * record (by hash) once per link: it keeps the hashes it sent each peer
 * (`processedOutHashes`) and clears them only when a ping or pong from that
 * peer arrives, so a second get of an unchanged key goes unanswered. These
 * tests check what our users see: a read that returns the value within its
 * own wait, not at its end, and the new value once it changed on the
 * 2.6.6 server. Nodes and waits: test/interop/interop-nodes.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import { type Legacy, type LegacyServer, type Nodes, LOOPBACK, legacyStored, ourPut, waitFor, withNodes, withTimeout } from "./interop/interop-nodes.js";

/** The read's own wait: long, so a read that waits it out is told apart from one answered. */
const READ_WAIT_MS = 4000;
/** An answered read on loopback takes milliseconds; this is far below READ_WAIT_MS. */
const PROMPT_MS = READ_WAIT_MS / 2;

/** `getData(key)` on `db`: its value and how long it took (ms). */
async function timedRead(db: ToolDb, key: string): Promise<{ value: unknown; ms: number }> {
  const started = performance.now();
  const value = await db.getData(key, false, READ_WAIT_MS);
  return { value, ms: performance.now() - started };
}

/** Reads `key` and asserts the value came back promptly (answered, not the end of the read's wait). */
async function assertPromptRead(db: ToolDb, key: string, expected: unknown, what: string): Promise<void> {
  const { value, ms } = await timedRead(db, key);
  assert.deepEqual(value, expected, `${what}: the value`);
  assert.ok(ms < PROMPT_MS, `${what}: answered within ${PROMPT_MS} ms, took ${Math.round(ms)} ms (the read's wait is ${READ_WAIT_MS} ms)`);
}

/** A 2.6.6 client writes `value` under `key`; the 2.6.6 server relays it to servers only, never to our client. */
async function legacyWrite(server: Legacy, writer: Legacy, key: string, value: unknown): Promise<void> {
  const stored = legacyStored(server, key, `2.6.6 server storing ${key}`);
  await writer.db.putData(key, value);
  await stored;
}

/** A 2.6.6 server and a 2.6.6 client of it that wrote `{ key }` under each of `keys`, in that order. */
async function legacyServerWith(nodes: Nodes, keys: readonly string[]): Promise<{ server: LegacyServer; writer: Legacy }> {
  const server = await nodes.legacyServer();
  const writer = await nodes.legacyNode({ peers: [server.port] });
  for (const key of keys) await legacyWrite(server, writer, key, { key });
  return { server, writer };
}

/** Counts the pings the 2.6.6 node takes in (its adapter's message entry point, wrapped until `stop`). */
function countPings(node: Legacy): { count: number; stop(): void } {
  const net = node.net as unknown as { onClientMessage: (message: string, ...rest: unknown[]) => void };
  const original = net.onClientMessage;
  const counter = {
    count: 0,
    stop: () => void (net.onClientMessage = original),
  };
  net.onClientMessage = function (this: unknown, message: string, ...rest: unknown[]) {
    if ((JSON.parse(message) as { type?: unknown }).type === "ping") counter.count++;
    return original.call(this, message, ...rest);
  };
  return counter;
}

describe("reading a key again over a link to a tool-db 2.6.6 server", () => {
  it("a tooldb-dht client reads the same key twice, then after it changed, then again: each read answered promptly", () =>
    withNodes(async (nodes) => {
      const { server, writer } = await legacyServerWith(nodes, []);
      await legacyWrite(server, writer, "reread", { v: 1 });
      const client = await nodes.dhtClient(server.port, { legacyRecords: true });
      await assertPromptRead(client, "reread", { v: 1 }, "first read");
      await assertPromptRead(client, "reread", { v: 1 }, "second read, unchanged");
      await assertPromptRead(client, "reread", { v: 1 }, "third read, unchanged");
      await legacyWrite(server, writer, "reread", { v: 2 });
      await assertPromptRead(client, "reread", { v: 2 }, "read after the change");
      await assertPromptRead(client, "reread", { v: 2 }, "read again after the change");
    }));

  it("a tooldb-dht client reads many keys twice at once: one ping for the link, every read answered promptly", () =>
    withNodes(async (nodes) => {
      const keys = Array.from({ length: 20 }, (_, i) => `many-${i}`);
      const { server } = await legacyServerWith(nodes, keys);
      const client = await nodes.dhtClient(server.port, { legacyRecords: true });
      await Promise.all(keys.map((key) => assertPromptRead(client, key, { key }, `first read of ${key}`)));
      const pings = countPings(server);
      await Promise.all(keys.map((key) => assertPromptRead(client, key, { key }, `second read of ${key}`)));
      pings.stop();
      assert.equal(pings.count, 1, "one ping for the 20 reads");
    }));

  it("a tooldb-dht server linked to a 2.6.6 server reads a key it caught up twice: each read answered promptly", () =>
    withNodes(async (nodes) => {
      const { server, writer } = await legacyServerWith(nodes, []);
      await legacyWrite(server, writer, "server-reread", { v: 1 });
      const ours = await nodes.dhtServer({ legacyRecords: true });
      const caughtUp = waitFor(ours, "data", "catch-up of server-reread", (r: { k: string }) => r.k === "server-reread");
      ours.network.connectTo(LOOPBACK, server.port);
      await caughtUp;
      await assertPromptRead(ours, "server-reread", { v: 1 }, "first read after the catch-up");
      await assertPromptRead(ours, "server-reread", { v: 1 }, "second read");
      await legacyWrite(server, writer, "server-reread", { v: 2 });
      // 2.6.6 relays a put to its server peers: ours may hold v2 already; the read must say v2 promptly either way.
      await assertPromptRead(ours, "server-reread", { v: 2 }, "read after the change");
    }));

  it("a tooldb-dht server's catch-up run again on a revived link to a 2.6.6 server fetches a record changed there, listed after 70 unchanged keys", () =>
    withNodes(async (nodes) => {
      const keys = Array.from({ length: 70 }, (_, i) => `held-${i}`);
      const { server, writer } = await legacyServerWith(nodes, keys);
      await legacyWrite(server, writer, "late", { v: 1 }); // listed last (the 2.6.6 memory store lists keys in insertion order)
      const ours = await nodes.dhtServer({ legacyRecords: true });
      const caughtUp = Promise.all([...keys, "late"].map((key) => ourPut(ours, key, `catch-up of ${key}`)));
      ours.network.connectTo(LOOPBACK, server.port);
      await caughtUp;
      // "late" changes on the 2.6.6 server and the relay to ours is lost (as on a link that went silent): the
      // newer record, signed by another 2.6.6 node that is linked to nobody, goes straight into the server's store.
      const offline = await nodes.legacyNode();
      await offline.db.putData("late", { v: 2 });
      await server.store.put("late", offline.store.peek("late")!);
      const [session] = ours.network.peers;
      assert.ok(session?.isServer && !session.proven, "linked to the 2.6.6 server only");
      const fetched = waitFor(ours, "data", "the revived catch-up fetching late v2", (r: { k: string; v: { v?: number } }) => r.k === "late" && r.v.v === 2, 8000);
      ours.sessionRevived(session, 60_000);
      await fetched;
      assert.deepEqual((await ours.records.get("late"))?.v, { v: 2 });
    }));

  it("a tooldb-dht client that let go of a record a 2.6.6 server pushed (its intake was full) gets it when it asks again", () =>
    withNodes(async (nodes) => {
      const server = await nodes.legacyServer();
      await server.db.putData("shed", { v: 1 });
      const client = await nodes.dhtClient(server.port, { legacyRecords: true });
      const first = ourPut(client, "shed", "the subscription's first value");
      await client.subscribeData("shed");
      await first;
      const [session] = client.network.peers;
      assert.ok(session && !session.proven, "linked to the 2.6.6 server");
      // What network/client-shedding.ts does while the client's intake is full: the peer's records are let go, their keys kept.
      const letGo: string[] = [];
      const shedding = new Promise<void>((resolve) => {
        session.letGo = (key) => {
          letGo.push(key);
          resolve();
        };
      });
      await server.db.putData("shed", { v: 2 }); // 2.6.6 pushes it to the subscriber, and notes its hash as sent
      await withTimeout(shedding, "the client letting go of v2");
      session.letGo = undefined;
      assert.deepEqual((await client.records.get("shed"))?.v, { v: 1 }, "v2 was let go");
      const fetched = waitFor(client, "data", "v2 asked again", (r: { k: string; v: { v?: number } }) => r.k === "shed" && r.v.v === 2);
      client.sessionShed(session, letGo);
      await fetched;
    }));
});
