/**
 * Server sync attacked as an attacker would (issue 23): hand-driven raw
 * peers and a modified server try to make a server copy its store for free.
 * Checked by counts of records and refusals, never by timings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb, type ToolDbOptions } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { SyncMessage } from "../src/records/messages.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../src/node/sync/range-sync.js";
import { itemId } from "../src/node/sync/sync-index.js";
import { Reconciler } from "../src/node/sync/negentropy.js";
import { portOf, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink } from "./helpers/raw-peer.js";
import { seed, signedRecords } from "./helpers/signed-records.js";
import { attackFixture } from "./helpers/attack-fixture.js";

const T = 60_000;
const TOPIC = "sync-abuse";
/** A negentropy message of 5 bytes: the whole range, "here is my (empty) list of ids": the responder lists every id it has. */
const LIST_EVERY_ID = Buffer.from([0x61, 0x00, 0x00, 0x02, 0x00]).toString("base64");
const past = () => Date.now() - 10_000_000;


describe("server sync under attack", () => {
  const fx = attackFixture(TOPIC, 30_000);
  const server = async (opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> => (await fx.server(opts)).db;

  function refusals(db: ToolDb): RefusalEvent[] {
    const out: RefusalEvent[] = [];
    db.on("refused", (e) => out.push(e));
    return out;
  }

  /** A raw peer from `from` that says it is a server speaking range sync. */
  async function rawServer(port: number, from?: string): Promise<RawLink> {
    const link = await RawLink.open(port, { topic: TOPIC, from });
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
    return link;
  }

  /** Sends a sync request and resolves its reply. */
  async function ask(link: RawLink, message: Frame & { type: string; id: string }): Promise<Frame> {
    const reply = link.next((f) => f.id === message.id, T);
    link.send({ to: [], ...message });
    return reply;
  }

  it("a session that is not a server is refused range sync, fetches and change feeds", { timeout: T }, async () => {
    const a = await server();
    const records = await signedRecords(50, "k/", past());
    await seed(a, records);
    const refused = refusals(a);
    const client = await RawLink.connect(portOf(a), { topic: TOPIC });
    const range = await ask(client, { type: "syncRange", id: "r1", m: LIST_EVERY_ID });
    assert.match(String(range.error), /only to servers/);
    assert.equal(range.m, "", "no id listed");
    const fetched = await ask(client, { type: "syncFetch", id: "f1", ids: records.map(itemId) });
    assert.deepEqual(fetched.records, []);
    const changes = await ask(client, { type: "syncChanges", id: "c1" });
    assert.deepEqual(changes.ids, []);
    assert.equal(refused.filter((e) => e.code === ErrorCode.SYNC_REFUSED).length, 3);
    assert.equal(client.isClosed, false, "a refusal, not a drop");
  });

  it("20 fresh identities from one address together get at most the budget of one", { timeout: T }, async () => {
    const stored = 200;
    const a = await server({ rangeSync: { budget: { slack: 0, servesPerItem: 1 } } });
    const records = await signedRecords(stored, "k/", past());
    await seed(a, records);
    const ids = records.map(itemId);
    const refused = refusals(a);
    let served = 0;
    for (let i = 0; i < 20; i++) {
      const peer = await rawServer(portOf(a), "127.0.0.20");
      const reply = await ask(peer, { type: "syncFetch", id: `fetch-${i}`, ids });
      served += (reply.records as unknown[]).length;
      peer.terminate();
    }
    assert.equal(served, stored, "one copy of the store in all, not 20");
    assert.ok(refused.filter((e) => e.code === ErrorCode.SYNC_REFUSED && /budget \(serves\) used up/.test(e.reason)).length >= 19, refused.map((e) => e.reason).join("; "));
    // Another address of the same /24 shares the range's (larger) budget, not a fresh one each.
    const neighbour = await rawServer(portOf(a), "127.0.0.21");
    const more = await ask(neighbour, { type: "syncFetch", id: "neighbour", ids });
    assert.equal((more.records as unknown[]).length, stored, "the /24 allows a few servers");
  });

  it("a burst of requests over the link's queue is answered busy at once, not struck: the link stays and is served after", { timeout: T }, async () => {
    const a = await server();
    await seed(a, await signedRecords(50, "k/", past()));
    const refused = refusals(a);
    const peer = await rawServer(portOf(a), "127.0.0.31");
    const ids = Array.from({ length: 24 }, (_, i) => `burst-${i}`);
    const replies = Promise.all(ids.map((id) => peer.next((f) => f.id === id, T)));
    for (const id of ids) peer.send({ to: [], type: "syncChanges", id });
    const answered = await replies;
    const busy = answered.filter((r) => /too many sync requests in flight/.test(String(r.error)));
    assert.ok(busy.length > 0 && busy.length < ids.length, `${busy.length} of ${ids.length} answered busy`);
    assert.equal(refused.filter((e) => e.code === ErrorCode.SYNC_REFUSED && /too many/.test(e.reason)).length, busy.length);
    assert.equal(refused.filter((e) => e.code === ErrorCode.BAD_MESSAGE).length, 0, "no strike");
    assert.equal(peer.isClosed, false);
    const after = await ask(peer, { type: "syncChanges", id: "after" });
    assert.equal(after.error, undefined, "served once the queue drained");
  });

  it("a repeated whole-range request is refused, not answered again", { timeout: T }, async () => {
    const a = await server();
    await seed(a, await signedRecords(100, "k/", past()));
    const refused = refusals(a);
    const peer = await rawServer(portOf(a), "127.0.0.30");
    const first = await ask(peer, { type: "syncRange", id: "r1", m: LIST_EVERY_ID });
    assert.equal(first.error, undefined);
    assert.ok(Buffer.from(String(first.m), "base64").length >= 100 * 32, "every id listed once");
    const again = await ask(peer, { type: "syncRange", id: "r2", m: LIST_EVERY_ID });
    assert.match(String(again.error), /the same ranges were answered/);
    assert.equal(again.m, "");
    // A fresh identity from the same address is the same source.
    const other = await rawServer(portOf(a), "127.0.0.30");
    const third = await ask(other, { type: "syncRange", id: "r3", m: LIST_EVERY_ID });
    assert.match(String(third.error), /the same ranges were answered/);
    assert.equal(refused.filter((e) => e.code === ErrorCode.SYNC_REFUSED).length, 2);
  });

  it("a fake server that answers every range as empty and drops the link after each push gets at most one copy per window", { timeout: 2 * T }, async () => {
    const stored = 300;
    const a = await server({ rangeSync: { budget: { slack: 0 } } });
    await seed(a, await signedRecords(stored, "k/", past()));
    // The modified peer: a real server whose range sync lies and drops links. It answers as a server
    // holding nothing would (an answer shaped as any responder's: an empty id list for each range).
    const fake = await server();
    const range = fake.sync.range!;
    const honest = range.handle.bind(range);
    const empty = { scan: async function* () {} };
    let received = 0;
    range.handle = (message: SyncMessage, from: PeerSession) => {
      if (message.type === "syncRange") {
        void new Reconciler(empty, 0, false).reconcile(Buffer.from(message.m, "base64")).then(({ output }) => from.send({ type: "syncRangeAck", id: message.id, m: Buffer.from(output!).toString("base64") }));
      }
      else if (message.type === "syncPush") {
        received += message.records.length;
        from.connection.close(1000, "took the push, gone");
      } else honest(message, from);
    };
    const runs: RangeSyncRun[] = [];
    a.sync.range!.on("done", (run) => runs.push(run));
    a.network.connectTo("127.0.0.1", portOf(fake));
    // a redials each time; let it try several times (the fake drops the link when a run ends without a push too).
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = runs.length;
      await waitUntil(() => runs.length > before, T, `run ${attempt + 1}`);
      for (const p of fake.network.peers) p.connection.close(1000, "fake drops the link");
    }
    assert.equal(received, stored, "one copy of the store pushed, however often it relinked");
    assert.ok(runs.some((r) => /push budget for this peer used up/.test(r.reason ?? "")), runs.map((r) => r.reason).join("; "));
    assert.ok(runs.every((r) => !r.complete));
  });
});
