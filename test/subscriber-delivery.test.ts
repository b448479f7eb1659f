/**
 * A hop list cannot censor a subscriber (issue 16, attack 4). `to` lists
 * the peers a message already went through; a relayer that put a
 * subscriber's id there stopped the server from delivering the update to
 * that subscriber. `to` now only keeps servers from passing a message round
 * in a loop. The attacker is a raw peer that writes validly signed updates
 * with the subscriber's id (and a full hop list) in `to`.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { randomId } from "../src/base/random.js";
import { signRecord } from "../src/node/record-signer.js";
import { LIMITS } from "../src/records/messages.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { testAuthor } from "./helpers/signed-records.js";

describe("delivery to subscribers ignores what peers put in `to`", () => {
  const nodes: ToolDb[] = [];
  afterEach(async () => {
    terminateRawLinks();
    await closeAll(...nodes.splice(0));
  });

  it("an update whose `to` names the subscriber still reaches it, as does one with a full hop list", { timeout: 20_000 }, async () => {
    const server = await startServer();
    nodes.push(server);
    const subscriber = await startClient([server]);
    nodes.push(subscriber);
    const seen: unknown[] = [];
    subscriber.addKeyListener("news", (record) => seen.push(record.v));
    await subscriber.subscribeData("news");
    await waitUntil(() => server.remoteSubscriptions.subscribers("news")?.size === 1, 5000, "the subscription");

    const attacker = await RawLink.connect(portOf(server), { topic: "test" });
    const author = await testAuthor();
    const victim = subscriber.network.getClientAddress();
    const t = Date.now();
    attacker.send({ type: "put", id: randomId(), to: [victim], data: await signRecord(author, "news", "hidden from the subscriber?", t, 0, false) });
    await waitUntil(() => seen.includes("hidden from the subscriber?"), 5000, "the first update at the subscriber");
    const fullHops = Array.from({ length: LIMITS.maxHops }, (_, i) => (i === 0 ? victim : `hop${i}`));
    attacker.send({ type: "put", id: randomId(), to: fullHops, data: await signRecord(author, "news", "behind a full hop list", t + 1, 0, false) });
    await waitUntil(() => seen.includes("behind a full hop list"), 5000, "the second update at the subscriber");

    assert.deepEqual(seen, ["hidden from the subscriber?", "behind a full hop list"]);
    assert.equal((await server.records.get("news"))?.v, "behind a full hop list");
    assert.equal((await subscriber.records.get("news"))?.v, "behind a full hop list");
    assert.ok(!attacker.frames.some((f) => f.type === "put"), "the writer is not sent its own update back");
  });

  it("a relayed put's `to` grows by one hop per relay: a sender that listed itself is not listed twice", { timeout: 20_000 }, async () => {
    const server = await startServer();
    nodes.push(server);
    const nextServer = await RawLink.open(portOf(server), { topic: "test" });
    await nextServer.provenHandshake({ isServer: true });
    const writer = await RawLink.connect(portOf(server), { topic: "test" });
    const record = await signRecord(await testAuthor(), "relay-hops", "v", Date.now(), 0, false);
    writer.send({ type: "put", id: randomId(), to: ["an-earlier-hop", writer.id.clientId], data: record });
    const relayed = await nextServer.next((f) => f.type === "put" && (f.data as { k?: string } | undefined)?.k === "relay-hops");
    assert.deepEqual(relayed.to, ["an-earlier-hop", writer.id.clientId, server.network.getClientAddress()]);
  });
});
