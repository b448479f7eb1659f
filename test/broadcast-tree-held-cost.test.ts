/**
 * What announcements (IHAVE) cost the servers that take them
 * (src/node/broadcast/held-check.ts, record-intake.ts).
 *
 * An ihave's named keys are looked up in the store, each as a get would
 * read it; an ihave was charged one message of the link's rate however many
 * keys it named, so under a low `messageRate` a peer made the server read
 * far more keys than it may send gets. Each lookup now takes a message of
 * the same allowance; past it the hash is asked for as before.
 *
 * A store copy's records are announced to no server the new one reconciles
 * with: not the copy's source, not a server it dialed, not one that dialed
 * it. Once the copy ends the new server reconciles with each again (once
 * with those that dialed it), pushing what they lack. Announced the copy, a
 * server that dialed the new one asked, past its lookups' bound, for records
 * it held: with 3,000 records copied it took 1,095 back.
 * Real servers on loopback sockets; a raw link plays the announcer.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { TREE_CAPABILITY } from "../src/node/broadcast/broadcast-tree.js";
import { randomId } from "../src/base/random.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { copyRun, nextRun } from "./helpers/copy-run.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
const past = () => Date.now() - 10_000_000;

describe("an ihave's key lookups under a low message rate", () => {
  const fx = attackFixture("tree-held-cost-rate", 30_000);
  const RATE = 40;
  const BURST = 40;

  it("take messages of the link's rate, as gets would: no more lookups than the rate allows, the rest asked for and delivered", { timeout: T }, async () => {
    const victim = (await fx.server({ limits: { messageRate: RATE, messageBurst: BURST } })).db;
    const records = await signedRecords(1200, "held/", past());
    await seed(victim, records);
    const [missing] = await signedRecords(1, "new/", past());
    let reads = 0;
    const get = victim.records.getChecked.bind(victim.records);
    victim.records.getChecked = (key: string, wanted: (chars: number) => boolean) => {
      reads++;
      return get(key, wanted);
    };
    const raw = await RawLink.open(portOf(victim), { topic: "tree-held-cost-rate" });
    await raw.provenHandshake({ isServer: true, caps: [TREE_CAPABILITY] });
    const fake = (i: number) => i.toString(16).padStart(64, "f");
    const grafted = new Set<string>();
    raw.onFrame((f) => {
      if (f.type !== "graft") return;
      for (const h of f.hs as string[]) grafted.add(h);
      // The announcer answers a graft as a tree neighbour does: the record whole.
      if ((f.hs as string[]).includes(missing!.h)) raw.send({ type: "put", id: randomId(), to: [raw.id.clientId], data: missing, r: 1, o: raw.id.clientId });
    });
    const started = Date.now();
    // Two ihaves of 600 held keys with hashes the victim lacks, the second also naming the one record it lacks.
    const first = records.slice(0, 600);
    raw.send({ type: "ihave", id: randomId(), to: [], hs: first.map((_, i) => fake(i)), ks: first.map((r) => r.k) });
    const second = records.slice(600);
    raw.send({ type: "ihave", id: randomId(), to: [], hs: [...second.map((_, i) => fake(600 + i)), missing!.h], ks: [...second.map((r) => r.k), missing!.k] });
    const announced = [...records.map((_, i) => fake(i)), missing!.h];
    await waitUntil(() => announced.every((h) => grafted.has(h)), 30_000, "every unheld hash to be asked for");
    await waitUntil(async () => (await victim.records.get(missing!.k))?.h === missing!.h, 30_000, "the announced record delivered");
    const allowed = BURST + (RATE * (Date.now() - started)) / 1000;
    // Before: 1,024 lookups in the first second, whatever the rate (two messages of it).
    assert.ok(reads <= allowed, `${reads} store lookups for 1,201 named keys; the link's rate allowed ${allowed.toFixed(0)} messages`);
    assert.equal(raw.isClosed, false, "not struck for announcing");
    const held = await contents(victim);
    for (const r of records) assert.equal(held.get(r.k), r.h, `the victim's ${r.k} is intact`);
  });
});

interface Taken {
  ihaves: number;
  hashes: number;
  records: number;
  /** The handling of each ihave taken (its keys' lookups). */
  readonly heard: unknown[];
}

/** What `db` takes from `peer` on the tree: ihaves, the hashes they name, and records pushed or sent for grafts. */
function takenFrom(db: ToolDb, peer: ToolDb): Taken {
  const taken: Taken = { ihaves: 0, hashes: 0, records: 0, heard: [] };
  const handle = db.handleMessage.bind(db);
  db.handleMessage = (message, from: PeerSession) => {
    const done = handle(message, from);
    if (from.address === peer.nodeAddress()) {
      if (message.type === "ihave") {
        taken.ihaves++;
        taken.hashes += message.hs.length;
        taken.heard.push(done);
      } else if (message.type === "put" || message.type === "crdtPut") taken.records++;
    }
    return done;
  };
  return taken;
}

describe("a store copy's records on each link of the new server", () => {
  const fx = attackFixture("tree-held-cost-copy", 30_000);
  const server = async (): Promise<ToolDb> => (await fx.server({ maxMessageBytes: 64 * 1024 })).db;

  it("go to no server the new one reconciles with: not the source, nor a server it dialed, nor one that dialed it, which its run after the copy sends nothing it holds", { timeout: T }, async () => {
    const [source, dialed, dialer, fresh] = [await server(), await server(), await server(), await server()];
    const records = await signedRecords(600, "copy/", past());
    await seed(source, records);
    // fresh dials `dialed`; `dialer` dials fresh; both runs end on empty stores.
    const dialedRun = nextRun(fresh);
    await linkServers(fresh, dialed, T);
    await dialedRun;
    const dialerRun = nextRun(dialer);
    await linkServers(dialer, fresh, T);
    await dialerRun;
    // `dialer` gets the same records straight into its store (not remembered as received).
    await seed(dialer, records);
    const [toSource, toDialed, toDialer] = [takenFrom(source, fresh), takenFrom(dialed, fresh), takenFrom(dialer, fresh)];
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    const copied = await copyRun(fresh, source);
    assert.equal(copied.mode, "copy", copied.reason);
    await waitUntil(async () => (await contents(fresh)).size === 600, T, "the copy");
    await waitUntil(async () => (await contents(dialed)).size === 600, T, "the dialed server to reconcile the copy");
    const id = (db: ToolDb) => db.nodeAddress().slice(-20);
    await waitUntil(() => runs.some((r) => r.peer === id(dialer) && r.complete), T, "fresh's run after the copy with the server that dialed it");
    const queued = () => (fresh.broadcast as unknown as { announcements: { timer?: unknown } }).announcements.timer;
    await waitUntil(() => queued() === undefined, 30_000, "fresh's announcements to go out");
    const counts = (t: Taken) => ({ ihaves: t.ihaves, hashes: t.hashes, records: t.records });
    assert.deepEqual(counts(toSource), { ihaves: 0, hashes: 0, records: 0 }, "nothing of the copy went back to its source");
    assert.deepEqual(counts(toDialed), { ihaves: 0, hashes: 0, records: 0 }, "nothing of the copy went on the tree to the server fresh dialed (it reconciled)");
    // Before: 600 hashes announced to it (and with 3,000, 1,095 records asked back past its lookups' bound).
    assert.deepEqual(counts(toDialer), { ihaves: 0, hashes: 0, records: 0 }, "nothing of the copy went on the tree to the server that dialed fresh");
    assert.equal(runs.find((r) => r.peer === id(dialer) && r.complete)!.pushed, 0, "fresh's run pushed it nothing: it held every record");
    assert.equal(dialer.broadcast.stats.grafts, 0, "and it asked for none");
  });
});
