/**
 * Review of 176a2eb (servers are not sent records they hold).
 *
 * A store copy's records are not relayed to other servers (record-intake.ts,
 * `spread` false): a new server copies a mesh member's store, and its other
 * servers were assumed to hold it too. A server it links to while the copy
 * runs may not: its reconciliation with the new server compared the part of
 * the copy done by then, and nothing brought it the rest (reconciliation runs
 * only when a link opens or revives). After a copy, the new server
 * reconciles again with the other servers it dialed, and relays the copy's
 * records to the others as before. The copy's source holds its pages back
 * until the other link's first run is done, so the order is not left to luck.
 *
 * An IHAVE's keys are looked up in the store (held-check.ts): a record that
 * came whole on the tree while the lookup ran must start no repair, and a
 * stranger naming the key of a large record again and again must not make
 * the server read and parse it 1,024 times a second (bounded by size too).
 * A copy's CRDT document with heads is not relayed either (its heads were).
 * Real servers on loopback sockets; a raw link plays the announcer.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import type { TreeMessage } from "../src/records/tree-messages.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { TREE_CAPABILITY } from "../src/node/broadcast/broadcast-tree.js";
import { randomId } from "../src/base/random.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { RawLink } from "./helpers/raw-peer.js";
import { onCopy } from "./helpers/copy-run.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords, testAuthor } from "./helpers/signed-records.js";
import { signRecord } from "../src/node/record-signer.js";
import { MapCrdt, type CrdtDocument } from "../src/entries/crdt.js";
import { copyRun } from "./helpers/copy-run.js";

const T = 120_000;
const past = () => Date.now() - 10_000_000;

/** Each run `db` reports, by the peer it ran with. */
function runsOf(db: ToolDb): RangeSyncRun[] {
  const runs: RangeSyncRun[] = [];
  db.sync.range!.on("done", (run) => runs.push(run));
  return runs;
}

describe("a store copy's records reach the servers that lack them", () => {
  const fx = attackFixture("tree-copy-bridge", 30_000);
  const server = async (): Promise<ToolDb> => (await fx.server({ maxMessageBytes: 64 * 1024 })).db;

  /** b holds 1,500 records, c one; fresh copies b's store and links to c (`freshDials`: fresh dials c) while the copy runs. */
  async function bridge(freshDials: boolean): Promise<void> {
    const [b, c, fresh] = [await server(), await server(), await server()];
    const records = await signedRecords(1500, "b/", past());
    await seed(b, records);
    await seed(c, await signedRecords(1, "c/", past()));
    // b answers the first copy page at once and holds the others until the first run between fresh and c has ended.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let pages = 0;
    onCopy(b, (_m, _from, honest) => void (pages++ === 0 ? honest() : released.then(honest)));
    const runs = runsOf(fresh);
    const cRuns = runsOf(c);
    fresh.network.connectTo("127.0.0.1", portOf(b));
    await waitUntil(async () => (await contents(fresh)).size > 0, T, "the copy to begin");
    await (freshDials ? linkServers(fresh, c, T) : linkServers(c, fresh, T));
    const id = (db: ToolDb) => db.nodeAddress().slice(-20);
    await waitUntil(() => (freshDials ? runs : cRuns).some((r) => r.peer === id(freshDials ? c : fresh)), T, "the run between fresh and c");
    const partial = (await contents(c)).size;
    assert.ok(partial < 1501, `c held ${partial} records after its run with fresh (the copy was not done)`);
    release();
    await waitUntil(() => runs.some((r) => r.peer === id(b)), T, "the copy");
    await waitUntil(async () => (await contents(fresh)).size === 1501, T, "fresh to hold both stores");
    // Before: c kept the records fresh had not copied yet when their run compared stores, for good.
    await waitUntil(async () => (await contents(c)).size === 1501, 30_000, "c to get b's records");
    assert.equal((await contents(b)).size, 1501, "b got c's record");
    const held = await contents(c);
    for (const r of records) assert.equal(held.get(r.k), r.h, `c holds ${r.k} as signed`);
  }

  it("a server the new one dials while it copies another's store gets the records copied after their run (reconciled again)", { timeout: T }, () => bridge(true));

  it("a server that dials the new one while it copies gets the records copied after its run (relayed)", { timeout: T }, () => bridge(false));
});

describe("an ihave whose record arrives while its key is looked up", () => {
  const fx = attackFixture("tree-held-race", 30_000);

  it("starts no repair (no graft for a record received meanwhile)", { timeout: T }, async () => {
    const victim = (await fx.server()).db;
    const [record] = await signedRecords(1, "race/", past());
    const raw = await RawLink.open(portOf(victim), { topic: "tree-held-race" });
    await raw.provenHandshake({ isServer: true, caps: [TREE_CAPABILITY] });
    // The victim's lookup of the announced key reads the store at once and answers once the record came whole on the tree.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let looked = false;
    const get = victim.records.getChecked.bind(victim.records);
    victim.records.getChecked = (key: string, wanted: (chars: number) => boolean) => {
      if (key !== record!.k || looked) return get(key, wanted);
      looked = true;
      const read = get(key, wanted); // read before the record is stored, answered after
      return gate.then(() => read);
    };
    let heard: Promise<void> | undefined;
    const handle = victim.broadcast.handle.bind(victim.broadcast);
    victim.broadcast.handle = (message: TreeMessage, from: PeerSession) => {
      const done = handle(message, from);
      if (message.type === "ihave") heard = done as Promise<void>;
      return done;
    };
    raw.send({ type: "ihave", id: randomId(), to: [], hs: [record!.h], ks: [record!.k] });
    await waitUntil(() => looked, 30_000, "the key's lookup");
    raw.send({ type: "put", id: randomId(), to: [raw.id.clientId], data: record, r: 1, o: raw.id.clientId });
    await waitUntil(async () => (await victim.records.get(record!.k))?.h === record!.h, T, "the record stored");
    release();
    await heard;
    const repair = (victim.broadcast as unknown as { repair: { size: number } }).repair;
    assert.equal(repair.size, 0, "before: the hash waited for a graft, asked for once graftTimeout passed");
    assert.equal((await contents(victim)).get(record!.k), record!.h, "the victim's data is intact");
  });
});

describe("an ihave naming the key of a large record again and again", () => {
  const fx = attackFixture("tree-held-large", 30_000);

  it("makes the server read at most a few MB of it, and gets grafts as before", { timeout: T }, async () => {
    const victim = (await fx.server()).db;
    const big = await signRecord(await testAuthor(), "big/0", { pad: "x".repeat(200_000) }, past(), 0, false);
    await seed(victim, [big]);
    let chars = 0;
    const backend = victim.records.backend;
    const read = backend.get.bind(backend);
    backend.get = async (key: string) => {
      const raw = await read(key);
      if (key === big.k) chars += raw?.length ?? 0;
      return raw;
    };
    const raw = await RawLink.open(portOf(victim), { topic: "tree-held-large" });
    await raw.provenHandshake({ isServer: true, caps: [TREE_CAPABILITY] });
    const grafted = new Set<string>();
    raw.onFrame((f) => {
      if (f.type === "graft") for (const h of f.hs as string[]) grafted.add(h);
    });
    const hs = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(64, "0"));
    raw.send({ type: "ihave", id: randomId(), to: [], hs, ks: hs.map(() => big.k) });
    await waitUntil(() => hs.every((h) => grafted.has(h)), 30_000, "every unheld hash to be asked for");
    // Before: each of the 256 names read and parsed the 200 KB record (51 MB); 2 MiB a second, plus a wave read past it.
    assert.ok(chars <= 6_000_000, `${chars} characters of the large record read for one ihave`);
    assert.equal(raw.isClosed, false, "not struck for announcing");
    assert.equal((await contents(victim)).get(big.k), big.h, "the victim's data is intact");
  });
});

describe("a store copy's CRDT document with heads", () => {
  const fx = attackFixture("tree-copy-heads", 30_000);

  it("is not announced to a server the new one reconciles with; that server gets it by reconciling", { timeout: T }, async () => {
    const server = async (): Promise<ToolDb> => (await fx.server()).db;
    const [a, b, fresh] = [await server(), await server(), await server()];
    const user = await testAuthor();
    const [one, two] = [new MapCrdt(user.getAddress()!), new MapCrdt(user.getAddress()!)];
    one.SET("title", "one");
    two.SET("colour", "red");
    for (const [crdt, t] of [[one, past()], [two, past() + 1]] as const) await b.crdtDocs.merge(await signRecord(user, "doc", crdt.getChanges(), t, 0, false, crdt.type));
    assert.equal(((await b.records.get("doc")) as CrdtDocument).heads?.length, 1, "b holds a document with two heads");
    // fresh copies a (empty) first: a is a linked server it reconciles with when it copies b.
    await copyRun(fresh, a);
    const stats = fresh.broadcast.stats;
    const before = stats.ihaveSent;
    const copied = await copyRun(fresh, b);
    assert.equal(copied.mode, "copy", copied.reason);
    await waitUntil(async () => ((await a.records.get("doc")) as CrdtDocument | undefined)?.heads?.length === 1, 30_000, "a to get the document");
    // Announcements go out ihaveInterval (50 ms) after the first is queued: none may be waiting.
    const queued = () => (fresh.broadcast as unknown as { announcements: { timer?: unknown } }).announcements.timer;
    await waitUntil(() => queued() === undefined, 30_000, "fresh's announcements to go out");
    // Before: each head of the document was announced to a (and grafted), as if spread.
    assert.equal(stats.ihaveSent - before, 0, "nothing of the copy was announced to a");
  });
});
