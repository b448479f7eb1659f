/**
 * Keys with lone surrogates (outside check: attack-surrogate-key.mjs).
 * LevelDB keeps keys as UTF-8, where every lone surrogate becomes U+FFFD:
 * the distinct keys "note\uFFFD", "note\uD800" and "note\uDC00" shared one
 * slot. An honest client confirmed "note\uFFFD"; a stranger's validly
 * signed record for "note\uD800" replaced it, and the server answered a get
 * of "note\uFFFD" with the stranger's record (which the client refused as a
 * reply for another key: getData gave null). Keys must be well-formed
 * UTF-16 on every path (records, get/query/subscribe keys from peers, the
 * local API), and a record read from a slot must carry the key asked
 * (stores written before the rule). Real LevelDB, real sockets.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, LevelStore, ToolDb } from "../src/index.js";
import { createLogger } from "../src/base/logger.js";
import { itemId, type SyncIndex } from "../src/node/sync/sync-index.js";
import { StoredRecords } from "../src/node/sync/stored-records.js";
import { loneSurrogateAt } from "../src/base/text-formats.js";
import { signRecord } from "../src/node/record-signer.js";
import { randomId } from "../src/base/random.js";
import { portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink, closedAfterEachTest, rawIdentity } from "./helpers/raw-peer.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";
import { typed } from "./helpers/typed-error.js";

const T = 15_000;
const HONEST = "note\uFFFD";
const unhandled = collectUnhandledRejections();
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function levelDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-surrogate-"));
  dirs.push(dir);
  return join(dir, "db");
}

function levelServer(storageName = levelDir()): Promise<ToolDb> {
  return startServer({ storageAdapter: LevelStore, storageName });
}

/** What an older server left: `record` written in the LevelDB slot of its key (a lone surrogate reads as U+FFFD), written directly. */
async function preFilled(records: ToolDbRecord[]): Promise<string> {
  const name = levelDir();
  const store = new LevelStore(undefined, name);
  await store.ready;
  for (const record of records) await store.put(record.k, JSON.stringify(record));
  await store.close();
  return name;
}

function indexOf(db: ToolDb): SyncIndex {
  return db.sync.range!.index;
}


/** Puts `record` asking for an ack; resolves the server's putAck that names its hash (stored or refused). */
function putAnswer(link: RawLink, record: ToolDbRecord): Promise<Frame> {
  const answer = link.next((f) => f.type === "putAck" && JSON.stringify([f.stored, f.refused]).includes(record.h));
  link.send({ type: "put", id: randomId(), to: [], ack: true, data: record });
  return answer;
}

describe("well-formed keys", () => {
  it("finds lone surrogates and passes pairs", { timeout: T }, () => {
    const cases: Array<[string, number]> = [
      ["", -1],
      ["note", -1],
      ["note\uFFFD", -1],
      ["smile \uD83D\uDE00", -1],
      ["note\uD800", 4],
      ["\uDC00note", 0],
      ["half \uD83D", 5],
      ["\uD83D\uDE00\uD83D", 2],
      ["\uD800\uD800\uDC00", 0],
      ["\uD83D\uDE00\uDE00", 2],
    ];
    for (const [text, at] of cases) assert.equal(loneSurrogateAt(text), at, JSON.stringify(text));
  });

  const nodes = closedAfterEachTest<ToolDb>(T);

  it("the local API refuses ill-formed keys and prefixes (INVALID_KEY)", { timeout: T }, async () => {
    const db = new ToolDb({ topic: "test", wait: 20 });
    nodes.push(db);
    await db.ready;
    const lone = typed(ErrorCode.INVALID_KEY, /lone surrogate/);
    await assert.rejects(db.putData("note\uD800", 1), lone);
    await assert.rejects(db.putData("half \uD83D", 1), lone);
    await assert.rejects(db.getData("note\uDC00", false, 50), lone);
    await assert.rejects(db.queryKeys("note\uD800", false, 50), lone);
    await assert.rejects(db.subscribeData("note\uD800"), lone);
    await assert.rejects(db.signUp("me\uD800", "pw"), typed(ErrorCode.INVALID_KEY, /lone surrogate/));
    // Well-formed keys, U+FFFD and emoji included, are kept.
    await db.putData(HONEST, "ok");
    await db.putData("smile \uD83D\uDE00", "ok");
    assert.equal(await db.getData(HONEST, false, 50), "ok");
    assert.equal(await db.getData("smile \uD83D\uDE00", false, 50), "ok");
  });

  it("a stranger's record for a key with a lone surrogate is refused and cannot replace another key's record", { timeout: 60_000 }, async () => {
    const srv = await levelServer();
    nodes.push(srv);
    const refusals: string[] = [];
    srv.on("refused", (e) => refusals.push(`${e.code} ${e.reason}`));
    const honest = await startClient([srv]);
    nodes.push(honest);
    await honest.putData(HONEST, "honest value", false, { ack: 1 });
    const stored = await srv.records.get(HONEST);

    const id = await rawIdentity();
    const link = await RawLink.open(portOf(srv), { topic: "test", id });
    await link.provenHandshake();
    for (const key of ["note\uD800", "note\uDC00"]) {
      const record = await signRecord(id.user, key, "attacker value", Date.now() + 1000, 0, false);
      const answer = await putAnswer(link, record);
      assert.deepEqual(answer.stored, [], `the put of ${JSON.stringify(key)} was stored`);
      assert.match(JSON.stringify(answer.refused), /lone surrogate/);
    }
    // Two half-cut emoji: distinct keys that UTF-8 made one.
    for (const key of ["cut \uD83D", "cut \uD83C"]) {
      const record = await signRecord(id.user, key, key, Date.now(), 0, false);
      assert.deepEqual((await putAnswer(link, record)).stored, []);
    }
    assert.deepEqual(await srv.queryKeys("cut ", false, 50), []);
    // A get of an ill-formed key is dropped (it would read the slot of "note\uFFFD").
    link.send({ type: "get", id: randomId(), to: [], key: "note\uD800" });
    await waitUntil(() => refusals.some((r) => r.startsWith(ErrorCode.INVALID_KEY)), T, "the dropped get reported");
    assert.deepEqual(await srv.records.get(HONEST), stored, "the honest record is intact");
    assert.ok(!link.isClosed);

    const fresh = await startClient([srv]);
    nodes.push(fresh);
    assert.equal(await fresh.getData(HONEST, false, 2000), "honest value");
    assert.deepEqual(await fresh.queryKeys("note", false, 1000), [HONEST]);
    assert.ok(refusals.some((r) => r.startsWith(ErrorCode.INVALID_KEY) && /get\.key is not well-formed/.test(r)), refusals.join("\n"));
    assert.ok(refusals.some((r) => r.startsWith(ErrorCode.RECORD_REFUSED) && /^\S+ IllFormedKey: /.test(r)), refusals.join("\n"));
    assert.deepEqual(unhandled, []);
  });

  it("a proven server relaying such records and a client asking for such keys keep their links, unstruck and unbanned", { timeout: 60_000 }, async () => {
    const srv = await levelServer();
    nodes.push(srv);
    const refusals: Array<{ code: string; reason: string }> = [];
    srv.on("refused", (e) => refusals.push(e));
    await srv.putData(HONEST, "honest value");
    // A tool-db 2.6.6 or older tooldb-dht server relays what a stranger wrote to it: 30 records, over the 10 strikes a link is allowed.
    const relayId = await rawIdentity();
    const relay = await RawLink.open(portOf(srv), { topic: "test", id: relayId });
    await relay.provenHandshake({ isServer: true, caps: ["rbsr1", "chg1"] });
    const author = await rawIdentity();
    for (let i = 0; i < 30; i++) {
      const record = await signRecord(author.user, `note${i}\uD800`, `stranger ${i}`, Date.now(), 0, false);
      relay.put(record);
      relay.send({ type: "syncPush", id: randomId(), to: [], records: [await signRecord(author.user, `push${i}\uDC00`, i, Date.now(), 0, false)] });
    }
    // A 2.6.6 client whose app cut an emoji in half: gets, subscribes, crdtGets and queries of such keys, again and again.
    const client = await RawLink.open(portOf(srv), { topic: "test" });
    await client.provenHandshake();
    for (let i = 0; i < 30; i++) {
      client.send({ type: "get", id: randomId(), to: [], key: `cut \uD83D${i}` });
      client.send({ type: "subscribe", id: randomId(), to: [], key: `cut \uD83D${i}` });
      client.send({ type: "crdtGet", id: randomId(), to: [], key: `cut \uD83D${i}` });
      client.send({ type: "query", id: randomId(), to: [], key: "cut ", after: `cut \uD83D${i}` });
    }
    // Both links still answer, in order after what they sent.
    assert.equal((await relay.get(HONEST)).v, "honest value");
    assert.equal((await client.get(HONEST)).v, "honest value");
    await waitUntil(() => refusals.filter((e) => /IllFormedKey/.test(e.reason)).length >= 60, T, "the relayed and pushed records refused");
    assert.ok(!relay.isClosed && !client.isClosed, "a link was closed");
    assert.deepEqual(refusals.filter((e) => e.code === ErrorCode.BANNED || e.code === ErrorCode.BAD_MESSAGE), []);
    // The client's 120 dropped messages are reported once (throttled), the count in the next report.
    const dropped = refusals.filter((e) => e.code === ErrorCode.INVALID_KEY);
    assert.equal(dropped.length, 1, JSON.stringify(dropped));
    assert.equal(srv.network.peers.length, 2);
    // Nothing of theirs was stored.
    assert.deepEqual(await srv.queryKeys("note", false, 50), [HONEST]);
    assert.deepEqual(await srv.queryKeys("push", false, 50), []);
    relay.terminate();
    client.terminate();
    assert.deepEqual(unhandled, []);
  });

  it("a record stored before the rule under another key's slot is neither served nor kept against that key's owner", { timeout: 60_000 }, async () => {
    const srv = await levelServer();
    nodes.push(srv);
    const refusals: Array<{ code: string; reason: string }> = [];
    srv.on("refused", (e) => refusals.push(e));
    const id = await rawIdentity();
    // What an older server wrote: "note\uD800"'s record, in the UTF-8 slot of "note\uFFFD".
    const old = await signRecord(id.user, "note\uD800", "old stranger value", Date.now(), 0, false);
    await srv.records.backend.put("note\uD800", JSON.stringify(old));
    assert.equal(await srv.records.get(HONEST), undefined, "another key's record was served");
    assert.equal(await srv.records.get(HONEST), undefined, "another key's record was served");
    assert.equal(await srv.records.getCheckedJson(HONEST, () => true), undefined, "another key's record was served");
    // Reported once, not on every read.
    assert.equal(refusals.filter((e) => e.code === ErrorCode.INVALID_KEY && /holds the record of key .* under key .*not served/.test(e.reason)).length, 1, JSON.stringify(refusals));

    const honest = await startClient([srv]);
    nodes.push(honest);
    assert.equal(await honest.getData(HONEST, false, 1000), null);
    // The slot's own key takes it, although the stranger's record is newer than nothing and older than this.
    await honest.putData(HONEST, "honest value", false, { ack: 1 });
    assert.equal((await srv.records.get(HONEST))?.v, "honest value");
    const fresh = await startClient([srv]);
    nodes.push(fresh);
    assert.equal(await fresh.getData(HONEST, false, 2000), "honest value");
    assert.deepEqual(unhandled, []);
  });

  it("a collision written before the rule: the sync index keeps one item for the slot, and range sync never sends the other key's record", { timeout: 60_000 }, async () => {
    const id = await rawIdentity();
    const old = await signRecord(id.user, "note\uD800", "old stranger value", Date.now() - 1000, 0, false);
    const other = await signRecord(id.user, "plain", "plain value", Date.now() - 1000, 0, false);
    // An older server's store: the stranger's record in the slot of "note\uFFFD" (no index yet: rebuilt on open).
    const srv = await levelServer(await preFilled([old, other]));
    nodes.push(srv);
    const index = indexOf(srv);
    await index.open();
    assert.equal(index.size, 2);
    const oldId = itemId(old);
    assert.equal(await index.keyOf(oldId), HONEST, "the index names the slot (UTF-8 read back)");
    const stored = new StoredRecords(index, srv.store, () => Number.POSITIVE_INFINITY, createLogger("test"));
    const sent = async (ids: string[]) => {
      const out: Array<string | undefined> = [];
      for await (const raw of stored.read(ids)) out.push(raw);
      return out;
    };
    assert.deepEqual(await sent([oldId, itemId(other)]), [undefined, JSON.stringify(other)], "the other key's record was sent");

    // The slot's own key takes it: its item replaces the stranger's (before: both stayed, the count 3 for 2 records).
    const honest = await startClient([srv]);
    nodes.push(honest);
    await honest.putData(HONEST, "honest value", false, { ack: 1 });
    const mine = await srv.records.get(HONEST);
    assert.equal(mine?.v, "honest value");
    assert.equal(index.size, 2);
    assert.equal(await index.keyOf(oldId), undefined, "the stranger's item is still in the index");
    assert.equal(await index.keyOf(itemId(mine!)), HONEST);
    assert.deepEqual(await sent([oldId, itemId(mine!)]), [undefined, JSON.stringify(mine)]);

    // A second server reconciles with it: it gets the honest record and "plain", and nobody is struck.
    const peer = await startServer({ peers: [{ host: "127.0.0.1", port: portOf(srv) }] });
    nodes.push(peer);
    const struck: string[] = [];
    for (const db of [srv, peer]) db.on("refused", (e) => e.code !== ErrorCode.INVALID_KEY && struck.push(`${e.code} ${e.reason}`));
    await waitUntil(async () => (await peer.records.get(HONEST))?.v === "honest value" && (await peer.records.get("plain")) !== undefined, 30_000, "the peer to sync");
    await waitUntil(() => indexOf(peer).size === 2, T, "the peer's index");
    assert.deepEqual(struck, []);
    assert.deepEqual(unhandled, []);
  });
});
