import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import { closeAll, linkServers, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";

describe("multi-node behaviour", () => {
  const nodes: ToolDb[] = [];
  const track = <T extends ToolDb>(n: T) => (nodes.push(n), n);
  after(() => closeAll(...nodes));

  it("relays a client's put through a chain of servers to a client on another server", async () => {
    const s1 = track(await startServer());
    const s2 = track(await startServer());
    const s3 = track(await startServer());
    await linkServers(s1, s2);
    await linkServers(s2, s3);
    const writer = track(await startClient([s1]));
    const reader = track(await startClient([s3]));
    const seen: unknown[] = [];
    reader.addKeyListener("chain", (r) => seen.push(r.v));
    await reader.subscribeData("chain");
    await waitUntil(() => s3.remoteSubscriptions.subscribers("chain")?.size === 1, 2000, "subscription on s3");
    await writer.putData("chain", "across three servers");
    await waitUntil(() => seen.length === 1, 3000, "relayed put");
    assert.deepEqual(seen, ["across three servers"]);
    assert.equal(await s2.getData("chain"), "across three servers");
  });

  it("answers a get for a key the local node lacks over several hops, with verified data", async () => {
    const s1 = track(await startServer());
    const s2 = track(await startServer());
    const s3 = track(await startServer());
    await linkServers(s1, s2);
    await linkServers(s2, s3);
    // Stored only on s3 (written by a client that then leaves).
    const writer = track(await startClient([s3]));
    await writer.putData("deep", { hops: 2 });
    await waitUntil(async () => (await s3.records.get("deep")) !== undefined, 2000, "s3 store");
    // s1 and s2 learned it by relay; drop it there to force a multi-hop get.
    await s1.store.close();
    const s1b = track(await startServer());
    await linkServers(s1b, s2);
    await s2.store.put("deep", "not json"); // unreadable locally: s2 must forward
    const reader = track(await startClient([s1b]));
    const value = await reader.getData("deep", false, 3000);
    assert.deepEqual(value, { hops: 2 });
  });

  it("delivers every later update of a subscription, not just the first", async () => {
    const server = track(await startServer());
    const writer = track(await startClient([server]));
    const reader = track(await startClient([server]));
    const seen: unknown[] = [];
    reader.addKeyListener("counter", (r) => seen.push(r.v));
    await reader.subscribeData("counter");
    await waitUntil(() => server.remoteSubscriptions.subscribers("counter")?.size === 1, 2000, "subscription");
    for (let i = 1; i <= 20; i++) await writer.putData("counter", i);
    await waitUntil(() => seen.at(-1) === 20, 3000, "all updates");
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("converges to one value on 3 servers under concurrent writes (last writer wins)", async () => {
    const servers = [track(await startServer()), track(await startServer()), track(await startServer())];
    await linkServers(servers[0]!, servers[1]!);
    await linkServers(servers[1]!, servers[2]!);
    await linkServers(servers[0]!, servers[2]!);
    const writers = await Promise.all(servers.map((s) => startClient([s])));
    writers.forEach(track);
    // Clients converge on the keys they subscribe to.
    for (const w of writers) for (const k of ["x", "y", "z"]) await w.subscribeData(k);
    await waitUntil(() => servers.every((s) => s.remoteSubscriptions.subscribers("z")?.size === 1), 2000, "subscriptions");
    // Concurrent writes to the same keys from every writer, several rounds.
    for (let round = 0; round < 5; round++) {
      await Promise.all(writers.map((w, i) => Promise.all(["x", "y", "z"].map((k) => w.putData(k, `${k}-w${i}-r${round}`)))));
    }
    for (const key of ["x", "y", "z"]) {
      await waitUntil(
        async () => {
          const hashes = await Promise.all([...servers, ...writers].map(async (n) => (await n.records.get(key))?.h));
          return hashes.every((h) => h !== undefined && h === hashes[0]);
        },
        5000,
        `convergence of ${key}`,
      );
    }
    const winners = await Promise.all(servers.map((s) => s.records.get("x")));
    assert.ok(winners[0]!.v && String(winners[0]!.v).startsWith("x-w"));
  });

  it("reconnects to a server restarted on the same port and resumes subscriptions", async () => {
    const server = await startServer();
    const port = portOf(server);
    const writer = track(await startClient([server]));
    const reader = track(await startClient([server]));
    const seen: unknown[] = [];
    reader.addKeyListener("after-restart", (r) => seen.push(r.v));
    await reader.subscribeData("after-restart");
    let disconnected = false;
    reader.onDisconnect = () => (disconnected = true);
    await server.close();
    await waitUntil(() => disconnected && reader.network.peers.length === 0, 3000, "disconnect seen");
    const restarted = track(await startServer({ port }));
    await waitUntil(() => reader.network.peers.length === 1 && writer.network.peers.length === 1, 5000, "reconnect");
    await waitUntil(() => restarted.remoteSubscriptions.subscribers("after-restart")?.size === 1, 2000, "re-subscription");
    await writer.putData("after-restart", "hello again");
    await waitUntil(() => seen.includes("hello again"), 3000, "update after restart");
  });

  it("fires onPeerConnect/onPeerDisconnect with the peer id, and onConnect/onDisconnect", async () => {
    const server = track(await startServer());
    const events: string[] = [];
    const client = track(await startClient([server]));
    const serverId = server.network.getClientAddress();
    assert.ok(client.network.isConnected(serverId));
    client.onPeerDisconnect = (id) => events.push(`peer-disconnect:${id}`);
    client.onDisconnect = () => events.push("disconnect");
    await server.close();
    await waitUntil(() => events.length === 2, 3000, "disconnect hooks");
    assert.deepEqual(events, [`peer-disconnect:${serverId}`, "disconnect"]);
  });

  it("signs publicHost into the peer record, so others learn a reachable address", async () => {
    const server = track(await startServer({ publicHost: "db.example.org" }));
    const client = track(await startClient([server]));
    const record = client.network.peers[0]!.record;
    assert.equal(record.host, "db.example.org");
    assert.equal(record.port, portOf(server));
  });

  it("servers catch up on each other's records when they link (missed writes, stale values)", async () => {
    const s1 = track(await startServer());
    const s2 = track(await startServer());
    const w1 = track(await startClient([s1]));
    const w2 = track(await startClient([s2]));
    for (let i = 0; i < 50; i++) await w1.putData(`only-on-1-${i}`, i);
    await w2.putData("shared", "old");
    await w2.putData("only-on-2", true);
    await w1.putData("shared", "new"); // newer than s2's copy
    await waitUntil(async () => (await s1.records.get("shared"))?.v === "new" && (await s2.records.get("only-on-2")) !== undefined, 2000, "local writes");
    await linkServers(s1, s2);
    await waitUntil(
      async () =>
        // Records arrive in batches merged in parallel: wait for all of them, not for the last one written.
        (await s2.records.query("only-on-1-")).length === 50 &&
        (await s2.records.get("shared"))?.v === "new" &&
        (await s1.records.get("only-on-2")) !== undefined,
      5000,
      "catch-up both ways",
    );
    assert.equal((await s2.records.query("only-on-1-")).length, 50);
  });
});
