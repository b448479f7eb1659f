/**
 * tooldb_messages_sent_total against ground truth: between two servers that
 * hold only the link to each other, what one counts as sent of each message
 * type the other counts as received, and the other way round, once the
 * handshake and a reconciliation run in both directions are over. An outside
 * check found the server's handshake frames (pong, proof, proofAck, its ping
 * when it dials) and the records of a reconciliation run (syncPush,
 * syncRecords) never counted as sent: a server that answered 2,020
 * handshakes exposed no `tooldb_messages_sent_total` series at all.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type ToolDb } from "../src/index.js";
import { createMetrics } from "../src/metrics/metrics.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { closeAll, linkServers, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { seed, signedRecords } from "./helpers/signed-records.js";
import { waitFor } from "./helpers/wait.js";

const T = 60_000;

const asObject = (map: ReadonlyMap<string, number>) => Object.fromEntries([...map].sort(([a], [b]) => a.localeCompare(b)));

describe("messages counted as sent match what the peer received", { timeout: 2 * T }, () => {
  const nodes: ToolDb[] = [];
  after(async () => {
    terminateRawLinks();
    await closeAll(...nodes);
  });

  it("a client's handshake: the server counts its pong and proof ack as sent", { timeout: T }, async () => {
    const server = await startServer({ topic: "sent-counts" });
    nodes.push(server);
    const raw = await RawLink.open(portOf(server), { topic: "sent-counts" });
    await raw.provenHandshake();
    await waitUntil(() => server.network.peers.length === 1, 5000, "the raw client's session");
    const pongs = raw.frames.filter((f) => f.type === "pong").length;
    const acks = raw.frames.filter((f) => f.type === "proofAck").length;
    assert.equal(pongs, 1);
    assert.equal(acks, 1);
    assert.equal(server.network.traffic.sent.get("pong"), pongs, "pongs the server sent");
    assert.equal(server.network.traffic.sent.get("proofAck"), acks, "proof acks the server sent");
    const metrics = createMetrics(server, { defaultMetrics: false });
    try {
      const text = await metrics.text();
      assert.match(text, /^tooldb_messages_sent_total\{type="pong"\} 1$/m);
      assert.match(text, /^tooldb_messages_sent_total\{type="proofAck"\} 1$/m);
    } finally {
      metrics.close();
    }
    raw.terminate();
  });

  it("two servers after their handshake and a reconciliation run both ways: sent by one = received by the other, type by type", { timeout: T }, async () => {
    const opts = { topic: "sent-counts-sync", handshakeTimeout: 30_000 };
    const [a, b] = [await startServer(opts), await startServer(opts)];
    nodes.push(a, b);
    const t0 = Date.now() - 1_000_000;
    const [onlyA, onlyB] = await Promise.all([signedRecords(300, "a/", t0), signedRecords(200, "b/", t0 + 1)]);
    await Promise.all([seed(a, onlyA), seed(b, onlyB)]);
    const run = waitFor(a.sync.range!, "done", T).then(([r]) => r as RangeSyncRun);
    await linkServers(a, b, T);
    const done = await run;
    assert.equal(done.complete, true, done.reason);
    assert.equal(done.pushed, 300);
    assert.equal(done.fetched, 200);
    // What is in flight lands: both sides' counts stay the same for 300 ms.
    let last = "";
    let since = Date.now();
    await waitUntil(
      () => {
        const now = JSON.stringify([a, b].map((n) => [asObject(n.network.traffic.sent), asObject(n.network.traffic.received)]));
        if (now !== last) [last, since] = [now, Date.now()];
        return Date.now() - since >= 300;
      },
      T,
      "traffic to settle",
    );
    const [sentA, receivedA, sentB, receivedB] = [a.network.traffic.sent, a.network.traffic.received, b.network.traffic.sent, b.network.traffic.received].map(asObject);
    assert.ok((sentA.syncPush ?? 0) > 0 && (sentB.syncRecords ?? 0) > 0, `a pushed and b answered fetches: ${JSON.stringify({ sentA, sentB })}`);
    assert.deepEqual(sentA, receivedB, "what a sent, b received");
    assert.deepEqual(sentB, receivedA, "what b sent, a received");
  });
});
