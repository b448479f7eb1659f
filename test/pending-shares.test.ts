/**
 * The one table of pending requests (forwarded gets and queries, catch-up
 * gets) is shared fairly: a peer and its IP may hold a share of it, and a
 * full table gives up the oldest request of whoever holds the most. An
 * outside check kept it full with a flood of gets for missing keys (honest
 * forwarded gets came back empty 12 times in 17) and with unproven fake
 * "legacy servers" that listed 10,000 keys and never answered a get (the
 * server sent 700,000 gets in 15 s).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import { randomId } from "../src/base/random.js";
import { PendingRequests } from "../src/node/pending-requests.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { linkServers, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { RawLink, closedAfterEachTest, rawIdentity } from "./helpers/raw-peer.js";

const T = 10_000;

describe("pending request shares", { timeout: 90_000 }, () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  it("a peer and an IP hold at most their share; a full table gives up the oldest request of whoever holds the most", () => {
    const clock = new ManualClock();
    const table = new PendingRequests<string>(16, clock); // 2 a peer, 4 an IP
    const timedOut: string[] = [];
    const add = (id: string, peer?: string, ip?: string) => table.add(id, 1000, () => undefined, () => timedOut.push(id), undefined, peer === undefined ? undefined : { peer, ip });
    assert.equal(add("a1", "a", "10.0.0.1"), true);
    assert.equal(add("a2", "a", "10.0.0.1"), true);
    assert.equal(add("a3", "a", "10.0.0.1"), false, "over the peer's share");
    assert.equal(add("b1", "b", "10.0.0.1"), true);
    assert.equal(add("b2", "b", "10.0.0.1"), true);
    assert.equal(add("c1", "c", "10.0.0.1"), false, "over the IP's share");
    assert.equal(add("h1", "honest", "10.0.0.9"), true);
    for (let i = 0; i < 11; i++) assert.equal(add(`own${i}`), true);
    assert.equal(table.size, 16);
    // Full: the next request gives up the oldest of the IP holding the most (a1), never the honest peer's.
    assert.equal(add("d1", "d", "10.0.0.2"), true);
    assert.deepEqual(timedOut, ["a1"]);
    assert.equal(add("d2", "d", "10.0.0.2"), true);
    assert.deepEqual(timedOut, ["a1", "a2"]);
    assert.ok(table.has("h1"));
    table.remove("b1");
    assert.equal(add("a4", "a", "10.0.0.1"), true, "room again once its requests are done");
    clock.advance(1000);
    assert.equal(table.size, 0);
  });

  it("a flood of gets for missing keys is forwarded within the flooder's share: an honest client's forwarded gets still find their records", async () => {
    // S2 takes S1's forwarded gets at 500 a second: unbounded, the flood queued the honest gets behind it past their timeout.
    const s2 = await startServer({ serverSync: false, limits: { messageRate: 500, messageBurst: 500 } });
    const s1 = await startServer({ serverSync: false, maxPendingRequests: 512 });
    nodes.push(s1, s2);
    const refused: RefusalEvent[] = [];
    s1.on("refused", (e) => refused.push(e));
    for (let i = 0; i < 5; i++) await s2.putData(`remote-${i}`, i);
    await linkServers(s1, s2);
    await waitUntil(() => s1.network.session(s2.network.getClientAddress())?.provenServer === true, T, "S2 proven at S1");
    const client = await startClient([s1]);
    nodes.push(client);
    const attacker = await RawLink.open(portOf(s1), { topic: "test", from: "127.0.41.1", id: await rawIdentity() });
    await attacker.handshake();
    for (let i = 0; i < 3000; i++) attacker.send({ type: "get", id: randomId(), to: [], key: `missing-${randomId()}` });
    await waitUntil(() => s1.requests.size >= s1.requests.shares.perPeer, T, "the flood forwarded");
    const found: unknown[] = [];
    for (let i = 0; i < 5; i++) found.push(await client.getData(`remote-${i}`, false, 2000));
    assert.deepEqual(found, [0, 1, 2, 3, 4]);
    assert.ok(refused.some((e) => e.code === ErrorCode.RATE_LIMITED && /not forwarded/.test(e.reason)), "the flood was held to its share");
    assert.ok(s1.requests.size <= s1.requests.shares.perPeer + 1, `${s1.requests.size} requests pending at S1`);
  });

  it("a fake legacy server that lists many keys and answers no get is asked a bounded number of gets", async () => {
    const server = await startServer();
    nodes.push(server);
    const link = await RawLink.open(portOf(server), { topic: "test", from: "127.0.41.2", id: await rawIdentity() });
    let gets = 0;
    const listed = new Promise<void>((resolve) =>
      link.ws.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; id: string };
        if (frame.type === "get") gets++;
        if (frame.type !== "query") return;
        link.send({ type: "queryAck", id: frame.id, to: [], keys: Array.from({ length: 5000 }, (_, k) => `fake-${k}`) });
        resolve();
      }),
    );
    // A tool-db 2.6.6 ping (no nonce) that says it is a server: an unproven legacy link gets the legacy catch-up.
    const pong = link.next((f) => f.type === "pong", T);
    link.send({ ...(await link.ping()), isServer: true });
    await pong;
    await listed;
    await waitUntil(() => server.sync.progress.completed >= 1, 30_000, "the catch-up with the fake server to stop");
    assert.ok(gets <= 2 * 64, `${gets} gets sent to a server that answered none`);
    assert.ok(server.requests.size < 64, `${server.requests.size} requests still pending`);
  });
});
