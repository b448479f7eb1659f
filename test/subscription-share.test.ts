/**
 * The server's subscription total is shared: a few identities that subscribe
 * up to their own caps until the total is full cannot keep a later client's
 * subscription out. The attackers are raw peers, each a fresh proven
 * identity; the victim is a plain client that subscribes afterwards. And a
 * client past its own cap (which it cannot know) is refused, not banned.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RefusalEvent, ToolDb } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import { randomId } from "../src/base/random.js";
import { RemoteSubscriptions } from "../src/node/subscriptions.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";

const T = 10_000;

describe("the subscription total is shared fairly", () => {
  const nodes: ToolDb[] = [];
  afterEach(async () => {
    terminateRawLinks();
    await closeAll(...nodes.splice(0));
  });

  it("past the total, a peer holding fewer takes the oldest subscription of the peer holding the most", () => {
    const subs = new RemoteSubscriptions(3, 4);
    const dropped: string[] = [];
    const drop = (peer: string, key: string) => dropped.push(`${peer}:${key}`);
    for (const key of ["a", "b", "c"]) assert.equal(subs.add("big", key, drop), "ok");
    assert.equal(subs.add("mid", "x", drop), "ok");
    assert.equal(subs.add("new", "n1", drop), "ok", "the total is full: big (3) gives up its oldest");
    assert.deepEqual(dropped, ["big:a"]);
    assert.equal(subs.subscribers("a"), undefined);
    assert.equal(subs.add("new", "n2", drop), "total-cap", "no peer holds more than new would (2): refused, nothing dropped");
    assert.deepEqual(dropped, ["big:a"]);
    assert.equal(subs.total, 4);
  });

  it("4 identities at their caps fill the total; a client that subscribes afterwards gets the current value and the next update", { timeout: 30_000 }, async () => {
    const server = await startServer({ maxSubscriptionsPerPeer: 50, limits: { maxSubscriptions: 200 } });
    nodes.push(server);
    const refused: RefusalEvent[] = [];
    server.on("refused", (e) => refused.push(e));
    await server.putData("news", "v1");
    const attackers: RawLink[] = [];
    for (let i = 0; i < 4; i++) {
      const link = await RawLink.open(portOf(server), { topic: "test", from: "127.0.0.2" });
      await link.provenHandshake();
      for (let k = 0; k < 50; k++) link.send({ type: "subscribe", id: randomId(), to: [], key: `junk-${i}-${k}` });
      attackers.push(link);
    }
    await waitUntil(() => server.remoteSubscriptions.total === 200, T, "the attackers to fill the total");

    const client = await startClient([server]);
    nodes.push(client);
    const seen: unknown[] = [];
    client.addKeyListener("news", (record) => seen.push(record.v));
    await client.subscribeData("news");
    await waitUntil(() => seen.includes("v1"), T, "the current value (before: no answer)");
    await server.putData("news", "v2");
    await waitUntil(() => seen.includes("v2"), T, "the update (before: never pushed)");
    assert.equal(server.remoteSubscriptions.total, 200);
    assert.ok(refused.some((e) => e.code === ErrorCode.SUBSCRIPTION_LIMIT && /dropped to make room/.test(e.reason)));
  });

  it("a client subscribing past its per-peer cap has the excess refused and keeps its link and its other subscriptions", { timeout: 30_000 }, async () => {
    // Before: each subscription past the cap was a strike, so 20 over it closed the link and banned the client.
    const server = await startServer({ maxSubscriptionsPerPeer: 50 });
    nodes.push(server);
    const refused: RefusalEvent[] = [];
    server.on("refused", (e) => refused.push(e));
    const client = await startClient([server]);
    nodes.push(client);
    const seen: unknown[] = [];
    client.addKeyListener("watched-0", (record) => seen.push(record.v));
    for (let k = 0; k < 70; k++) await client.subscribeData(`watched-${k}`);
    await waitUntil(() => refused.filter((e) => e.code === ErrorCode.SUBSCRIPTION_LIMIT).length === 20, T, "the 20 subscriptions over the cap refused");
    assert.ok(refused.every((e) => e.code === ErrorCode.SUBSCRIPTION_LIMIT && /too many subscriptions from this peer \(50\)/.test(e.reason)), JSON.stringify(refused[0]));
    await server.putData("watched-0", "after");
    await waitUntil(() => seen.includes("after"), T, "an update of a subscription within the cap (before: the link was closed and the client banned)");
    assert.equal(server.remoteSubscriptions.total, 50);
    assert.equal(server.network.guard.bans.size, 0, "nobody banned");
  });
});
