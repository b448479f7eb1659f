/**
 * Range-based reconciliation between tooldb-dht servers (src/sync) over real
 * loopback sockets: convergence at 50,000 records, both directions, a late
 * joiner, resumption after a dropped link, and a peer that lies.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, ToolDb, type ToolDbOptions, type ToolDbRecord } from "../src/index.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../src/node/sync/range-sync.js";
import { closeAll, linkServers, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";
import { waitFor } from "./helpers/wait.js";
import { startLatencyProxy } from "./helpers/latency-proxy.js";

/** Bounds for waits (a loaded 2-core CI box verifies 50,000 signatures slowly); never timing assertions. */
const T = 240_000;
/** A small frame limit, so that every message type has to be split. */
const SMALL_FRAMES: Partial<ToolDbOptions> = { maxMessageBytes: 64 * 1024 };
const past = () => Date.now() - 10_000_000;
/**
 * The records of the two largest tests, signed once for the file (signing and
 * verifying dominate their time): `a/` and `b/` (the first test's
 * difference, the long round trip's shared records), `a2/` and `b2/` (the
 * long round trip's difference).
 */
const T0 = past();
const fixtures = new Map<string, Promise<ToolDbRecord[]>>();
const signedOnce = (count: number, prefix: string, t0: number) => {
  const key = `${count} ${prefix} ${t0}`;
  if (!fixtures.has(key)) fixtures.set(key, signedRecords(count, prefix, t0));
  return fixtures.get(key)!;
};

function nextRun(db: ToolDb): Promise<RangeSyncRun> {
  return waitFor(db.sync.range!, "done", T).then(([run]) => run as RangeSyncRun);
}

async function assertSame(a: ToolDb, b: ToolDb): Promise<number> {
  const [x, y] = await Promise.all([contents(a), contents(b)]);
  assert.equal(x.size, y.size, "same number of records");
  for (const [key, h] of x) assert.equal(y.get(key), h, `same version of ${key}`);
  return x.size;
}

describe("range-based reconciliation between servers", () => {
  const nodes: ToolDb[] = [];
  const server = async (opts: Partial<ToolDbOptions> = {}) => {
    // A loaded CI box can take seconds to sign a handshake: no link churn from the 2 s test default.
    const db = await startServer({ topic: "rbsr", ...SMALL_FRAMES, handshakeTimeout: 30_000, ...opts });
    nodes.push(db);
    return db;
  };
  after(() => closeAll(...nodes));

  it("servers list the rbsr1 capability; a 10,000-record difference converges completely, over many frames each within the frame limit", { timeout: 2 * T }, async () => {
    // 64 KiB frames: each side's records fill dozens of them (as 50,000 records did 1 MiB frames).
    const [a, b] = [await server(), await server()];
    const [onlyA, onlyB] = await Promise.all([signedOnce(6000, "a/", T0), signedOnce(4000, "b/", T0 + 5)]);
    for (const list of [onlyA, onlyB]) assert.ok(JSON.stringify(list).length > 20 * SMALL_FRAMES.maxMessageBytes!, "the records take more than 20 frames");
    await Promise.all([seed(a, onlyA), seed(b, onlyB)]);
    const refused: RefusalEvent[] = [];
    for (const db of [a, b]) db.on("refused", (e) => refused.push(e));
    const run = nextRun(a);
    await linkServers(a, b, T);
    assert.ok(a.network.peers[0]!.caps.has(RBSR_CAPABILITY) && b.network.peers[0]!.caps.has(RBSR_CAPABILITY));
    const done = await run;
    assert.equal(done.complete, true, done.reason);
    assert.equal(done.pushed, 6000);
    assert.equal(done.fetched, 4000);
    assert.equal(await assertSame(a, b), 10_000);
    const bad = refused.filter((e) => e.code === ErrorCode.FRAME_TOO_LARGE || e.code === ErrorCode.BAD_MESSAGE || e.code === ErrorCode.SYNC_REFUSED);
    assert.deepEqual(bad, [], "no frame was refused (none over the limit), no message malformed");
    // Reconciling again finds nothing: a few round trips of fingerprints, no records.
    // a keeps redialing b: drop the link and let it come back.
    await a.sync.range!.index.feed.forgetCheckpoints(); // no change feed shortcut: ranges again
    const again = nextRun(a);
    for (const p of a.network.peers) p.connection.close(1000, "test relinks");
    const second = await again;
    assert.equal(second.complete, true);
    assert.equal(second.mode, "range");
    assert.equal(second.pushed + second.fetched, 0);
    assert.ok(second.rangeBytesOut + second.rangeBytesIn < 4096, `${second.rangeBytesOut + second.rangeBytesIn} bytes of fingerprints`);
  });

  it("divergence on both sides, including newer versions of shared keys, converges in both directions; a late third server converges too", { timeout: T }, async () => {
    const [a, b, c] = [await server(), await server(), await server()];
    const t0 = past();
    const shared = await signedRecords(2000, "s/", t0);
    const [onlyA, onlyB, newerOnA, newerOnB] = await Promise.all([
      signedRecords(700, "a/", t0),
      signedRecords(900, "b/", t0),
      signedRecords(300, "s/", t0 + 5000, "v2"), // keys s/0..299, newer
      signedRecords(600, "s/", t0 + 9000, "v3").then((r) => r.slice(400)), // keys s/400..599, newer
    ]);
    await seed(a, [...shared, ...onlyA]);
    await seed(b, [...shared, ...onlyB]);
    await seed(a, newerOnA);
    await seed(b, newerOnB);
    const run = nextRun(a);
    await linkServers(a, b, T);
    assert.equal((await run).complete, true);
    assert.equal(await assertSame(a, b), 2000 + 700 + 900);
    const merged = await contents(a);
    assert.equal(merged.get("s/5"), newerOnA[5]!.h, "A's newer version won on both");
    assert.equal(merged.get("s/450"), newerOnB[50]!.h, "B's newer version won on both");

    const late = nextRun(c);
    await linkServers(c, b, T);
    assert.equal((await late).complete, true);
    assert.equal(await assertSame(c, a), 3600);
  });

  it("after an outage a reconnect goes by the change feeds, listing and sending only what changed; without a valid checkpoint it falls back to ranges", { timeout: T }, async () => {
    const [a, b] = [await server(), await server()];
    const t0 = past();
    await seed(a, await signedRecords(3000, "base/", t0));
    const first = nextRun(a);
    await linkServers(a, b, T);
    const full = await first;
    assert.equal(full.mode, "range");
    assert.equal(full.complete, true, full.reason);

    // An outage: each side takes writes the other does not see, spread over the whole time range.
    a.network.disconnectFrom("127.0.0.1", portOf(b));
    await waitUntil(() => a.network.peers.length === 0 && b.network.peers.length === 0, T, "the link to drop");
    const [onA, onB] = await Promise.all([signedRecords(40, "a2/", t0 - 1000), signedRecords(60, "b2/", t0 + 1000)]);
    await Promise.all([seed(a, onA), seed(b, onB)]);
    const indexed = [a, b].map((db) => db.sync.range!.index.feed.head);

    const second = nextRun(a);
    await linkServers(a, b, T);
    const run = await second;
    assert.equal(run.complete, true, run.reason);
    assert.equal(run.mode, "changes");
    assert.equal(run.rounds, 0, "no range reconciliation");
    assert.equal(run.pushed, 40);
    assert.equal(run.fetched, 60);
    assert.deepEqual(a.syncProgress.runs, { changes: 1, range: 1, copy: 0, incomplete: 0 });
    assert.equal(await assertSame(a, b), 3100);
    // Each side's checkpoint of the other now covers all the other held before the run (what it was sent during the run comes later in its feed).
    assert.ok((await a.sync.range!.index.feed.checkpoint(b.nodeAddress()))!.seq >= indexed[1]!);
    assert.ok((await b.sync.range!.index.feed.checkpoint(a.nodeAddress()))!.seq >= indexed[0]!);

    // A server that lost its checkpoints (or whose peer rebuilt its index) reconciles by ranges, and finds nothing to send.
    await a.sync.range!.index.feed.forgetCheckpoints();
    const third = nextRun(a);
    for (const p of a.network.peers) p.connection.close(1000, "test relinks");
    const again = await third;
    assert.equal(again.mode, "range");
    assert.equal(again.complete, true, again.reason);
    assert.equal(again.pushed + again.fetched, 0);
  });

  it("across a long round trip the dialer reads more per message than its base, and the run still converges", { timeout: T }, async () => {
    // A small base, so that a message's reads end it (as at 1,000,000 records with the default) and the run takes many rounds.
    // 160 of 12,000 records: about 1.3 % of the store a message (16,384 of 1,000,000 is 1.6 %).
    const base = 160;
    const [a, b] = [await server({ maxMessageBytes: 1024 * 1024, rangeSync: { readsPerMessage: base } }), await server({ maxMessageBytes: 1024 * 1024 })];
    const [sharedA, sharedB, onlyA, onlyB] = await Promise.all([signedOnce(6000, "a/", T0), signedOnce(4000, "b/", T0 + 5), signedOnce(1000, "a2/", T0), signedOnce(1000, "b2/", T0 + 5)]);
    const shared = [...sharedA, ...sharedB];
    await Promise.all([seed(a, [...shared, ...onlyA]), seed(b, [...shared, ...onlyB])]);
    // 500 ms round trip: far more than a message's work on either side (at most 1,280 reads), even on a loaded box.
    const proxy = await startLatencyProxy(portOf(b), 250);
    try {
      const first = nextRun(a);
      a.network.connectTo("127.0.0.1", proxy.port, { maxRetries: 5 });
      const run = await first;
      assert.equal(run.mode, "range");
      assert.equal(run.complete, true, run.reason);
      assert.deepEqual([run.pushed, run.fetched], [1000, 1000]);
      assert.ok(run.readsPerMessage! > base, `the budget grew: ${run.readsPerMessage} reads a message against a base of ${base}`);
      assert.equal(await assertSame(a, b), 12_000);
    } finally {
      a.network.disconnectFrom("127.0.0.1", proxy.port);
      await proxy.close();
    }
  });

  it("a catch-up interrupted by a dropped link continues on the next link and sends only what is left", { timeout: T }, async () => {
    const [a, b] = [await server(), await server()];
    const total = 4000;
    const records = await signedRecords(total, "r/", past());
    await seed(a, records);
    let received = 0;
    const runs: RangeSyncRun[] = [];
    b.sync.range!.on("done", (run) => runs.push(run));
    const onPut = () => {
      // Drop the link once half of the catch-up arrived (b redials by itself).
      if (++received === total / 2) for (const p of b.network.peers) p.connection.close(1000, "test drops the link");
    };
    b.on("put", onPut);
    await linkServers(b, a, T);
    await waitUntil(() => runs.some((r) => r.complete), T, "a complete run");
    b.off("put", onPut);
    const [cut, resumed] = [runs[0]!, runs.at(-1)!];
    assert.equal(cut.complete, false);
    assert.ok(cut.fetched >= total / 2 && cut.fetched < total, `${cut.fetched} records before the drop`);
    assert.equal(resumed.complete, true, resumed.reason);
    // Batches in flight when the link dropped may be fetched again (3 fetches of at most
    // (64 KiB - 4 KiB) / 2 / 67 = 458 ids with these frames); nothing else is. The bound is
    // below `total`: a resumed run that started over from nothing would break it.
    const inFlight = 3 * Math.floor((SMALL_FRAMES.maxMessageBytes! - 4096) / 2 / 67);
    assert.ok(total - cut.fetched + inFlight < total);
    assert.ok(resumed.fetched <= total - cut.fetched + inFlight, `resumed run fetched ${resumed.fetched} after ${cut.fetched}`);
    assert.equal(await assertSame(a, b), total);
  });

  it("a peer sending malformed or lying fingerprints cannot crash the server nor make it repeat its whole store", { timeout: T }, async () => {
    const rounds = 12;
    const a = await server({ rangeSync: { budget: { rounds } } });
    await seed(a, await signedRecords(3000, "x/", past()));
    const refused: RefusalEvent[] = [];
    a.on("refused", (e) => refused.push(e));
    // A peer that proves its own (fresh) key and says it is a server: all it takes to be answered at all.
    const link = await RawLink.open(portOf(a), { topic: "rbsr" });
    let bytesIn = 0;
    link.ws.on("message", (data) => (bytesIn += String(data).length));
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY] });
    const replies = link.frames as Array<{ type?: string; m?: string; error?: string }>;
    const ws = { send: (frame: string) => link.send(frame), close: () => link.terminate() };

    // Malformed: not base64, a truncated message, a bad version byte. Each is refused and answered with an error.
    const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");
    ws.send(JSON.stringify({ type: "syncRange", id: "bad-1", to: [], m: "not base64!" }));
    ws.send(JSON.stringify({ type: "syncRange", id: "bad-2", to: [], m: b64("6100") }));
    ws.send(JSON.stringify({ type: "syncRange", id: "bad-3", to: [], m: b64("ff") }));
    await waitUntil(() => refused.filter((e) => e.code === ErrorCode.BAD_MESSAGE).length >= 3, T, "three refusals");

    // Lying: always claim the whole range differs (a made-up fingerprint), over and over.
    // The very same request again is refused at once (a repeat); new lies are refused once the budget is used up.
    const lie = (i: number) => b64("61" + "00" + "00" + "01" + i.toString(16).padStart(32, "0")); // (∞, Fingerprint, i)
    ws.send(JSON.stringify({ type: "syncRange", id: "lie-first", to: [], m: lie(0) }));
    ws.send(JSON.stringify({ type: "syncRange", id: "lie-again", to: [], m: lie(0) }));
    await waitUntil(() => replies.some((r) => r.type === "syncRangeAck" && (r as { id?: string }).id === "lie-again"), T, "the repeat's answer");
    assert.match(replies.at(-1)!.error ?? "", /the same ranges were answered/);
    let answered = 1;
    for (let i = 1; i < rounds * 3; i++) {
      ws.send(JSON.stringify({ type: "syncRange", id: `lie-${i}`, to: [], m: lie(i) }));
      await waitUntil(() => replies.some((r) => r.type === "syncRangeAck" && (r as { id?: string }).id === `lie-${i}`), T, "an answer");
      if (!replies.at(-1)!.error) answered++;
    }
    // The two malformed messages that reached the reconciler were charged too.
    assert.equal(answered, rounds - 2, "answers stop once the peer's budget is used up");
    assert.ok(refused.some((e) => e.code === ErrorCode.SYNC_REFUSED));
    // Each answer is one split of the range (16 fingerprints), never the store.
    assert.ok(bytesIn < rounds * 4096 + 64 * 1024, `${bytesIn} bytes sent to the liar`);
    ws.close();
    assert.ok(!a.isClosed && portOf(a) > 0, "the server is still up");
  });
  it("a push still being checked does not hold back a range round or a fetch on the same link", { timeout: T }, async () => {
    const a = await server();
    const [kept] = await signedRecords(1, "kept/", past());
    await seed(a, [kept!]);
    // Records under held/ wait in a custom check until the test lets them through.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    a.addCustomVerification("held/", async () => (await held, true));
    const link = await RawLink.open(portOf(a), { topic: "rbsr" });
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY] });
    const [record] = await signedRecords(1, "held/", past());
    let pushAcked = false;
    const pushAck = link.next((f) => f.id === "push-1", T).then((f) => ((pushAcked = true), f));
    link.send({ type: "syncPush", id: "push-1", to: [], records: [record] });
    // The whole range as an empty id list: the server answers with its ids (here: the kept record's).
    const everyId = Buffer.from([0x61, 0x00, 0x00, 0x02, 0x00]).toString("base64");
    const rangeAck = link.next((f) => f.id === "range-1", 10_000);
    link.send({ type: "syncRange", id: "range-1", to: [], m: everyId });
    assert.equal((await rangeAck).type, "syncRangeAck");
    assert.equal(pushAcked, false, "the push is still being checked");
    release();
    assert.equal((await pushAck).type, "syncPushAck");
    assert.equal((await a.store.get(record!.k)) !== undefined, true, "the held record was stored");
    link.terminate();
  });
});
