/**
 * A GRAFT is answered as the gets it replaces would be (outside check:
 * grafts naming one 900 KB record 1,024 times brought back 2,304 copies,
 * about 1.98 GB, past the link's send budget). The attacker is a proven
 * `pt1` "server" with a key of its own, as anyone can be: a graft repeating
 * a hash is refused, several hashes of one key bring one copy, an answer
 * waits while the link is held by the send budget and stops when the link
 * closes. An honest client is served throughout.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { ErrorCode } from "../src/base/errors.js";
import { randomId } from "../src/base/random.js";
import { signRecord } from "../src/node/record-signer.js";
import { MapCrdt } from "../src/entries/crdt.js";
import type { ToolDbRecord } from "../src/records/record.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, closedAfterEachTest, rawIdentity, type RawIdentity } from "./helpers/raw-peer.js";

const T = 10_000;

/** A proven link that says it is a tree server, from its own IP. */
async function treePeer(server: ToolDb, from: string): Promise<RawLink> {
  const link = await RawLink.open(portOf(server), { topic: "test", from, id: await rawIdentity() });
  await link.provenHandshake({ isServer: true, caps: ["pt1"] });
  return link;
}

/** Puts a record of the attacker's own and waits for the server to store it (its hash is then remembered by the tree). */
async function putOwn(link: RawLink, id: RawIdentity, key: string, value: string, at: number): Promise<ToolDbRecord> {
  const record = await signRecord(id.user, key, value, at, 0, false);
  const ack = link.next((f) => f.type === "putAck" && Array.isArray(f.stored) && f.stored.includes(record.h), T);
  link.send({ type: "put", id: randomId(), to: [], ack: true, data: record });
  await ack;
  return record;
}

/** An honest get on a fresh link from 127.0.0.1 is answered with the record. */
async function honestGet(server: ToolDb, key: string): Promise<ToolDbRecord> {
  const link = await RawLink.open(portOf(server), { topic: "test", from: "127.0.0.1" });
  try {
    await link.handshake();
    return await link.get(key, T);
  } finally {
    link.terminate();
  }
}

const copiesOf = (link: RawLink, key: string) => link.frames.filter((f) => f.type === "put" && (f.data as ToolDbRecord | undefined)?.k === key).length;

describe("graft answers", { timeout: 60_000 }, () => {
  const nodes = closedAfterEachTest<ToolDb>(T);

  /** A server closed after the test, and a proven tree peer of it from `from` with a fresh key to write. */
  async function serverAndPeer(from: string): Promise<{ server: ToolDb; link: RawLink; key: string; at: number }> {
    const server = await startServer();
    nodes.push(server);
    return { server, link: await treePeer(server, from), key: "doc-" + randomId(), at: Date.now() };
  }

  it("a graft naming one hash 1,024 times is refused: no copy is sent, and honest gets are served", async () => {
    const server = await startServer();
    nodes.push(server);
    const refused: RefusalEvent[] = [];
    server.on("refused", (e) => refused.push(e));
    const link = await treePeer(server, "127.0.40.1");
    const record = await putOwn(link, link.id, "big-" + randomId(), "v".repeat(200_000), Date.now());
    link.send({ type: "graft", id: randomId(), to: [], hs: Array(1024).fill(record.h) });
    await waitUntil(() => refused.some((e) => e.code === ErrorCode.BAD_MESSAGE && /hash twice/.test(e.reason)), T, "the graft refused");
    // A graft naming it once is answered with one copy (the honest form).
    const sent = server.broadcast.stats.eagerSent;
    link.send({ type: "graft", id: randomId(), to: [], hs: [record.h] });
    await waitUntil(() => server.broadcast.stats.eagerSent > sent, T, "the graft answered");
    assert.equal(server.broadcast.stats.eagerSent - sent, 1);
    await link.next((f) => f.type === "put" && (f.data as ToolDbRecord).h === record.h, T);
    assert.equal(copiesOf(link, record.k), 1, "one copy in all: none for the refused graft");
    assert.equal((await honestGet(server, record.k)).h, record.h);
  });

  it("hashes of several versions of one key bring one copy, of what the key holds", async () => {
    const { server, link, key, at } = await serverAndPeer("127.0.40.2");
    const versions: ToolDbRecord[] = [];
    for (let i = 0; i < 3; i++) versions.push(await putOwn(link, link.id, key, `v${i}`, at + i));
    const sent = server.broadcast.stats.eagerSent;
    link.send({ type: "graft", id: randomId(), to: [], hs: versions.map((v) => v.h) });
    await waitUntil(() => server.broadcast.stats.eagerSent > sent, T, "the graft answered");
    assert.equal(server.broadcast.stats.eagerSent - sent, 1, "one copy for the three hashes of one key");
    const copy = await link.next((f) => f.type === "put" && (f.data as ToolDbRecord).k === key && (f as { o?: unknown }).o !== undefined, T);
    assert.equal((copy.data as ToolDbRecord).h, versions[2]!.h, "the newest, as stored");
  });

  it("answers running side by side on two links are both counted", async () => {
    const server = await startServer();
    nodes.push(server);
    const a = await treePeer(server, "127.0.40.5");
    const b = await treePeer(server, "127.0.40.6");
    const ra = await putOwn(a, a.id, "a-" + randomId(), "a", Date.now());
    const rb = await putOwn(b, b.id, "b-" + randomId(), "b", Date.now());
    // Slow store reads: both answers are under way at once.
    const read = server.records.getChecked.bind(server.records);
    server.records.getChecked = async (key, wanted) => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return read(key, wanted);
    };
    const sent = server.broadcast.stats.eagerSent;
    const copies = [a.next((f) => f.type === "put" && (f.data as ToolDbRecord).h === ra.h && f.o !== undefined, T), b.next((f) => f.type === "put" && (f.data as ToolDbRecord).h === rb.h && f.o !== undefined, T)];
    a.send({ type: "graft", id: randomId(), to: [], hs: [ra.h] });
    b.send({ type: "graft", id: randomId(), to: [], hs: [rb.h] });
    await Promise.all(copies);
    // `eagerSent += await answer` read the count before the wait: the answer that ended second wrote over the first's.
    await waitUntil(() => server.broadcast.stats.eagerSent - sent >= 2, 2000, "both answers counted");
  });

  it("a key that holds a record of another type than the hash asked for is sent in that record's frame type", async () => {
    const { server, link, key, at } = await serverAndPeer("127.0.40.4");
    // The hash that arrives is a plain record's (a put); the key then holds a newer CRDT document.
    const plain = await putOwn(link, link.id, key, "plain", at);
    const map = new MapCrdt(link.id.address);
    map.SET("title", "crdt");
    const doc = await signRecord(link.id.user, key, map.getChanges(), at + 1, 0, false, map.type);
    const ack = link.next((f) => f.type === "putAck" && Array.isArray(f.stored) && f.stored.includes(doc.h), T);
    link.send({ type: "crdtPut", id: randomId(), to: [], ack: true, data: doc });
    await ack;
    assert.equal((await server.records.get(key))?.c, map.type);
    link.send({ type: "graft", id: randomId(), to: [], hs: [plain.h] });
    const copy = await link.next((f) => (f.type === "put" || f.type === "crdtPut") && (f.data as ToolDbRecord).k === key && (f as { o?: unknown }).o !== undefined, T);
    assert.equal((copy.data as ToolDbRecord).h, doc.h, "what the key holds now");
    assert.equal(copy.type, "crdtPut", "a CRDT record goes in a crdtPut (before: a put, the type of the hash asked for)");
  });

  it("an answer waits while the link does not read its replies, and stops (no more store reads) once the link closed", async () => {
    const server = await startServer({ limits: { maxSendBacklog: 256 * 1024 } });
    nodes.push(server);
    const link = await treePeer(server, "127.0.40.3");
    const N = 40;
    const at = Date.now();
    const records: ToolDbRecord[] = [];
    for (let i = 0; i < N; i++) records.push(await putOwn(link, link.id, `big-${i}-${randomId()}`, String(i % 10).repeat(256 * 1024), at));
    let reads = 0;
    const read = server.records.getChecked.bind(server.records);
    server.records.getChecked = (key, wanted) => {
      reads++;
      return read(key, wanted);
    };
    const session = server.network.session(link.id.clientId)!;
    // The attacker stops reading: once the kernel's buffers are full, the server's queue for the link grows.
    (link.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const sent = server.broadcast.stats.eagerSent;
    link.send({ type: "graft", id: randomId(), to: [], hs: records.map((r) => r.h) });
    await waitUntil(() => session.mustWait(), T, "the link held by the send budget");
    const readsWhenHeld = reads;
    assert.ok(readsWhenHeld < N, `${readsWhenHeld} of ${N} records read before the link was held`);
    link.terminate();
    await waitUntil(() => server.broadcast.stats.eagerSent > sent, T, "the answer to end");
    assert.ok(reads <= readsWhenHeld + 1, `${reads - readsWhenHeld} store reads after the link was held and closed`);
    assert.ok(server.broadcast.stats.eagerSent - sent < N, "not every record was sent");
    assert.equal((await honestGet(server, records[N - 1]!.k)).h, records[N - 1]!.h);
  });
});
