/**
 * Reads that see the mesh: with a server linked, a get of a key held locally
 * still asks the servers and returns the newest record (for a CRDT, the
 * merge) if an answer comes within the get's timeout; otherwise, or offline,
 * the local copy. A server's read asks its server peers, not its clients.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CounterCrdt, ToolDb } from "../src/index.js";
import { closeAll, linkServers, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";

const T = 10_000;
/** Every wait inside is bounded by T; this bounds the test as a whole. */
const TEST_TIMEOUT = 120_000;

describe("fresh reads", () => {
  it("tool-db's CounterCrdt scenario: Alice's getCrdt returns 15 after Bob added 5 through another server", { timeout: TEST_TIMEOUT }, async () => {
    const s1 = await startServer();
    const s2 = await startServer();
    await linkServers(s1, s2);
    const alice = await startClient([s1]);
    const bob = await startClient([s2]);
    try {
      await Promise.all([alice.anonSignIn(), bob.anonSignIn()]);
      const counter = new CounterCrdt(alice.userAccount.getAddress()!);
      counter.ADD(10);
      await alice.putCrdt("counter", counter);

      const bobs = new CounterCrdt(bob.userAccount.getAddress()!);
      await waitUntil(async () => (await bob.getCrdt("counter", bobs, false, 500)) !== null && bobs.value === 10, T, "Bob reads 10");
      bobs.ADD(5);
      const onS1 = waitFor(s1, "put", T, (m) => m.data.k === "counter" && m.data.a === bob.userAccount.getAddress());
      await bob.putCrdt("counter", bobs);
      await onS1;

      // Alice holds her own +10 locally; the read still asks her server, which has Bob's +5.
      const read = new CounterCrdt(alice.userAccount.getAddress()!);
      await alice.getCrdt("counter", read);
      assert.equal(read.value, 15);
    } finally {
      await closeAll(alice, bob, s1, s2);
    }
  });

  it("a plain key held locally: the newer record from the mesh wins; a stale answer does not replace a newer local one", { timeout: TEST_TIMEOUT }, async () => {
    const s1 = await startServer();
    const s2 = await startServer();
    await linkServers(s1, s2);
    const alice = await startClient([s1]);
    const bob = await startClient([s2]);
    try {
      await alice.putData("topic", "first");
      const relayed = waitFor(s1, "put", T, (m) => m.data.k === "topic" && m.data.v === "second");
      await waitUntil(async () => (await bob.getData("topic", false, 500)) === "first", T, "Bob reads the first value");
      await bob.putData("topic", "second");
      await relayed;
      assert.equal(await alice.getData("topic"), "second");
      assert.equal((await alice.records.get("topic"))?.v, "second", "the newer record is stored too");

      // Alice writes again; her server has it, so a read keeps the newest (hers).
      await alice.putData("topic", "third");
      await waitUntil(async () => (await s1.records.get("topic"))?.v === "third", T, "third on s1");
      assert.equal(await alice.getData("topic"), "third");
    } finally {
      await closeAll(alice, bob, s1, s2);
    }
  });

  it("no answer within the timeout, or offline: the local copy", { timeout: TEST_TIMEOUT }, async () => {
    const server = await startServer();
    const client = await startClient([server]);
    const offline = new ToolDb({ topic: "test" });
    try {
      // The server refuses the key, so it does not hold it and has no server to ask: it never answers.
      server.addCustomVerification("only-here", async () => false);
      const refused = waitFor(server, "refused", T, (e) => e.key === "only-here");
      await client.putData("only-here", "local");
      await refused;
      assert.equal(await server.records.get("only-here"), undefined);
      const started = Date.now();
      assert.equal(await client.getData("only-here", false, 300), "local");
      assert.ok(Date.now() - started >= 250, "it waited for the mesh");
      await offline.putData("k", "offline value");
      assert.equal(await offline.getData("k"), "offline value");
    } finally {
      await closeAll(client, server, offline);
    }
  });

  it("a server's read of a key it holds asks its server peers, not its clients", { timeout: TEST_TIMEOUT }, async () => {
    const s1 = await startServer();
    const s2 = await startServer();
    await linkServers(s1, s2);
    const clients = [await startClient([s1]), await startClient([s1])];
    try {
      await s2.putData("news", "from s2");
      await waitUntil(async () => (await s1.records.get("news")) !== undefined, T, "news on s1");
      const before = clients.map((c) => c.network.traffic.received.get("get") ?? 0);
      const asked = waitFor(s2, "message", T, (m) => m.type === "get");
      assert.equal(await s1.getData("news"), "from s2");
      await asked;
      assert.deepEqual(clients.map((c) => c.network.traffic.received.get("get") ?? 0), before, "no get reached a client");
    } finally {
      await closeAll(...clients, s1, s2);
    }
  });
});
