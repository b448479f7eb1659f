/**
 * Every frame a node builds fits what its peer accepts (issue 16 attacks 5
 * and 6, issue 25's record at the size limit). Relaying added fields to a
 * put at the size limit and range sync packed frames a few bytes over it, so
 * receivers dropped the link (FRAME_TOO_LARGE) and two servers never linked
 * again; a key query over a big store did the same to a client. One rule
 * (src/limits/frame-fit.ts) now sizes every path from the largest record
 * allowed: a record of exactly that size crosses relay and range sync (fetch
 * and push) between servers that stay linked, a small record follows it,
 * and a query over 20,000 keys of 200 characters comes in pages.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import { FrameFit, utf8Length } from "../src/limits/frame-fit.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { signRecord } from "../src/node/record-signer.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { seed, testAuthor } from "./helpers/signed-records.js";
import { withTimeout } from "./helpers/wait.js";

const T = 20_000;

/** Every refusal a node reports. */
function refusals(...dbs: ToolDb[]): RefusalEvent[] {
  const seen: RefusalEvent[] = [];
  for (const db of dbs) db.on("refused", (e) => seen.push(e));
  return seen;
}

/** A value that makes `writer`'s record under `key` exactly `bytes` bytes of JSON (a multi-byte character included). */
async function valueOfRecordSize(writer: ToolDb, key: string, bytes: number): Promise<string> {
  const probe = await signRecord(writer.userAccount, key, "é", Date.now(), 0, false);
  const overhead = utf8Length(JSON.stringify(probe)) - utf8Length(JSON.stringify("é"));
  return "é" + "x".repeat(bytes - overhead - utf8Length(JSON.stringify("é")));
}

async function linkProven(a: ToolDb, b: ToolDb): Promise<PeerSession> {
  a.network.connectTo("127.0.0.1", portOf(b));
  await waitUntil(
    () => a.network.session(b.network.getClientAddress())?.provenServer === true && b.network.session(a.network.getClientAddress())?.provenServer === true,
    T,
    "a proven server link",
  );
  return a.network.session(b.network.getClientAddress())!;
}

function oversize(...dbs: ToolDb[]): number {
  return dbs.reduce((n, db) => n + [...db.network.traffic.oversize.values()].reduce((a, b) => a + b, 0), 0);
}

describe("every frame fits what a peer accepts", () => {
  const nodes: ToolDb[] = [];
  const track = <N extends ToolDb>(n: N) => (nodes.push(n), n);
  afterEach(async () => {
    terminateRawLinks();
    await withTimeout(closeAll(...nodes.splice(0)), T, "nodes to close");
  });

  it("the rule: the largest record plus the fullest envelope fits a frame, and a fetch answer fits it with every id it could not hold", () => {
    const fit = new FrameFit({ maxMessageBytes: 1024 * 1024 });
    assert.equal(fit.idsPerFetch, 1024);
    assert.equal(fit.maxRecordBytes, 1024 * 1024 - 4096 - 1024 * 67);
    assert.ok(fit.maxRecordBytes + 67 * (fit.idsPerFetch - 1) <= fit.recordBudget);
    const chosen = new FrameFit({ maxMessageBytes: 1024 * 1024, maxRecordBytes: 1_000_000 });
    assert.ok(chosen.idsPerFetch >= 1 && 1_000_000 + 67 * chosen.idsPerFetch <= chosen.recordBudget);
    assert.throws(() => new FrameFit({ maxMessageBytes: 1024 * 1024, maxRecordBytes: 1024 * 1024 }), { code: ErrorCode.INVALID_ARGUMENT });
    assert.equal(utf8Length("aé€😀"), 1 + 2 + 3 + 4);
  });

  it("a record of exactly the largest size crosses relay and range sync between servers that stay linked, then a small one reaches all", { timeout: 120_000 }, async () => {
    const s1 = track(await startServer());
    const s2 = track(await startServer());
    const max = s1.frames.maxRecordBytes;
    const refused = refusals(s1, s2);
    const link12 = await linkProven(s1, s2);
    const subscriber = track(await startClient([s2]));
    refused.push(...refusals(subscriber));
    const bigAtSubscriber = new Promise<void>((resolve) => subscriber.addKeyListener("big", (r) => (typeof r.v === "string" && r.v.length > 1000 ? resolve() : undefined)));
    await subscriber.subscribeData("big");
    await waitUntil(() => s2.remoteSubscriptions.subscribers("big")?.size === 1, T, "the subscription");

    // One byte over is refused at the writer, clearly; exactly the limit goes through.
    const writer = track(await startClient([s1]));
    await assert.rejects(writer.putData("big", await valueOfRecordSize(writer, "big", max + 1)), /over the largest record allowed/);
    await writer.putData("big", await valueOfRecordSize(writer, "big", max), false, { ack: 1, timeoutMs: T });
    assert.equal(utf8Length((await s1.store.get("big"))!), max);

    // Relay: s1 -> s2 (a server) -> the subscriber.
    await withTimeout(bigAtSubscriber, T, "the largest record at the subscriber");
    assert.equal(utf8Length((await s2.store.get("big"))!), max);

    // Range sync: a third server that holds a largest record of its own links later, fetches s1's and pushes its own.
    const s3 = track(await startServer());
    refused.push(...refusals(s3));
    const other = track(await startClient([s3]));
    await other.putData("big-from-s3", await valueOfRecordSize(other, "big-from-s3", max), false, { ack: 1, timeoutMs: T });
    await other.close();
    const link31 = await linkProven(s3, s1);
    await waitUntil(async () => (await s3.store.get("big")) !== undefined && (await s1.store.get("big-from-s3")) !== undefined, T, "both largest records synced");
    assert.equal(utf8Length((await s3.store.get("big"))!), max);
    assert.equal(utf8Length((await s1.store.get("big-from-s3"))!), max);

    // Then a small record reaches every server and the subscriber, over the same links.
    const smallAtSubscriber = new Promise<void>((resolve) => subscriber.addKeyListener("big", (r) => (r.v === "small" ? resolve() : undefined)));
    await writer.putData("big", "small");
    await withTimeout(smallAtSubscriber, T, "the small record at the subscriber");
    await waitUntil(async () => (await s2.records.get("big"))?.v === "small" && (await s3.records.get("big"))?.v === "small", T, "the small record on every server");

    assert.equal(s1.network.session(s2.network.getClientAddress()), link12, "s1 and s2 kept their link");
    assert.equal(s3.network.session(s1.network.getClientAddress()), link31, "s3 and s1 kept their link");
    assert.deepEqual(refused.filter((e) => e.code === ErrorCode.FRAME_TOO_LARGE), []);
    assert.equal(oversize(s1, s2, s3, subscriber), 0, "no frame was held back as too large");
  });

  it("a key query over 20,000 keys of 200 characters comes in pages, each within the frame limit; a 2.6.6-style asker gets one bounded page", { timeout: 180_000 }, async () => {
    const server = track(await startServer());
    const author = await testAuthor();
    const pad = "k".repeat(200 - "paged/".length - 5);
    const t0 = Date.now() - 60_000;
    const records = [];
    for (let i = 0; i < 20_000; i += 1000) {
      records.push(...(await Promise.all(Array.from({ length: 1000 }, (_, j) => signRecord(author, `paged/${pad}${String(i + j).padStart(5, "0")}`, i + j, t0 + i + j, 0, false)))));
    }
    assert.ok(records.every((r) => r.k.length === 200));
    await seed(server, records);
    const refused = refusals(server);
    const client = track(await startClient([server]));
    const session = client.network.peers[0]!;
    const keys = await client.queryKeys("paged/", false, 5000);
    assert.equal(keys.length, 20_000);
    assert.ok((client.network.traffic.received.get("queryAck") ?? 0) >= 4, "the answer came in pages");
    assert.equal(client.network.peers[0], session, "the link stayed");
    assert.deepEqual(refused.filter((e) => e.code === ErrorCode.FRAME_TOO_LARGE), []);
    assert.equal(oversize(server), 0);

    // An asker without the qpage1 capability (as tool-db 2.6.6) gets what it got before, bounded by a frame.
    const legacy = await RawLink.connect(portOf(server), { topic: "test" });
    legacy.send({ type: "query", id: "q1", to: [], key: "paged/" });
    const answer = await legacy.next((f) => f.type === "queryAck" && f.id === "q1", T);
    const frame = JSON.stringify(answer);
    assert.ok(utf8Length(frame) <= 1024 * 1024, `one frame of ${utf8Length(frame)} bytes`);
    assert.ok((answer.keys as string[]).length > 1000 && (answer.keys as string[]).length < 20_000);
    assert.equal(answer.next, undefined, "no paging offered to a peer that did not ask for it");
    assert.equal(legacy.isClosed, false);
  });
});
