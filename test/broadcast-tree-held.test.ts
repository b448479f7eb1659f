/**
 * Records that servers already hold are not sent to them again over the
 * broadcast tree (src/node/broadcast): a new server's store copy is not
 * passed on at all, and records brought by anti-entropy are announced with
 * their keys, so a server that holds them asks for none (held-check.ts).
 * Real servers on loopback sockets; an attacker on a raw link names keys to
 * make a server read its store, within a bound.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { TREE_CAPABILITY } from "../src/node/broadcast/broadcast-tree.js";
import { randomId } from "../src/base/random.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { copyRun, nextRun } from "./helpers/copy-run.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "tree-held";
const past = () => Date.now() - 10_000_000;

/** Counts the frames `db` takes from `peer`, by type. */
function framesFrom(db: ToolDb, peer: ToolDb): Map<string, number> {
  const counts = new Map<string, number>();
  const handle = db.handleMessage.bind(db);
  db.handleMessage = (message, from: PeerSession) => {
    if (from.address === peer.nodeAddress()) counts.set(message.type, (counts.get(message.type) ?? 0) + 1);
    return handle(message, from);
  };
  return counts;
}

/** Lets the tree's announcements flush and any repair they started come due (ihave 50 ms, graft 400 ms). */
async function settle(db: ToolDb): Promise<void> {
  const grafts = () => db.broadcast.stats.grafts;
  let last = -1;
  await waitUntil(async () => {
    if (grafts() === last) return true;
    last = grafts();
    await new Promise((r) => setTimeout(r, 1000));
    return false;
  }, T, "the tree to settle");
}

describe("the broadcast tree sends servers nothing they hold", () => {
  const fx = attackFixture(TOPIC, 30_000);
  // Small frames: a copy of a few thousand records takes many pages, time enough to link another server meanwhile.
  const server = async (): Promise<ToolDb> => (await fx.server({ maxMessageBytes: 64 * 1024 })).db;

  it("a new server linked to two servers that hold the same records copies one's store and sends the other none of it", { timeout: T }, async () => {
    const [a, b, fresh] = [await server(), await server(), await server()];
    const records = await signedRecords(3000, "base/", past());
    await seed(a, records);
    await seed(b, records);
    await linkServers(a, b, T);
    const toA = framesFrom(a, fresh);
    const toB = framesFrom(b, fresh);
    let linkedAtEnd = 0;
    const copy = copyRun(fresh, b).then((run) => ((linkedAtEnd = fresh.network.peers.length), run));
    await waitUntil(async () => (await contents(fresh)).size > 0, T, "the copy to begin");
    await linkServers(fresh, a, T);
    await copy;
    assert.equal(linkedAtEnd, 2, "a was linked while the copy ran");
    assert.ok((toB.get("syncCopy") ?? 0) > 1, "b's store was copied, page by page");
    await waitUntil(async () => (await contents(fresh)).size === 3000, T, "the copy");
    await settle(a);
    assert.deepEqual([toA.get("put") ?? 0, toA.get("ihave") ?? 0, a.broadcast.stats.grafts], [0, 0, 0], "no record of the copy went to a (before: 2,526 of 3,000, after a's grafts)");
    assert.equal((await contents(a)).size, 3000);
  });

  it("records a range run brings are announced with their keys; a server holding them asks for none, and one missing some asks for those alone", { timeout: T }, async () => {
    const [a, b, c] = [await server(), await server(), await server()];
    // c and a are linked and in step on one record; then a and b get 600 records c lacks, a 10 fewer.
    await seed(c, await signedRecords(1, "own/", past()));
    const first = nextRun(c);
    await linkServers(c, a, T);
    await first;
    const records = await signedRecords(600, "base/", past());
    await seed(b, records);
    await seed(a, records.slice(10)); // straight into the store: a does not remember them as received
    const toA = framesFrom(a, c);
    const run = nextRun(c);
    await linkServers(c, b, T);
    const brought = await run;
    assert.equal(brought.complete, true, brought.reason);
    assert.ok(brought.fetched >= 600, `${brought.fetched} fetched from b`);
    await waitUntil(async () => (await contents(a)).size === 601, 30_000, "a to get the 10 it lacked");
    await settle(a);
    assert.ok((toA.get("ihave") ?? 0) > 0, "c announced what it fetched");
    const puts = toA.get("put") ?? 0;
    assert.ok(puts <= 20, `a took ${puts} records from c for the 10 it lacked (before: about all 600 it held, grafted)`);
  });

  it("an attacker naming keys a server holds, with hashes it does not, makes it read at most 1,024 keys a second, and gets grafts as before", { timeout: T }, async () => {
    const victim = await server();
    const records = await signedRecords(2000, "held/", past());
    await seed(victim, records);
    const before = await contents(victim);
    let reads = 0;
    const get = victim.records.getChecked.bind(victim.records);
    victim.records.getChecked = (key: string, wanted: (chars: number) => boolean) => {
      reads++;
      return get(key, wanted);
    };
    const raw = await RawLink.open(portOf(victim), { topic: TOPIC });
    await raw.provenHandshake({ isServer: true, caps: [TREE_CAPABILITY] });
    const fake = () => randomId().padEnd(64, "0").replace(/[^0-9a-f]/g, "a").slice(0, 64);
    const grafted = new Set<string>();
    raw.onFrame((f) => {
      if (f.type === "graft") for (const h of f.hs as string[]) grafted.add(h);
    });
    const sent: string[] = [];
    for (let m = 0; m < 3; m++) {
      const batch = records.slice(m * 600, m * 600 + 600);
      const hs = batch.map(() => fake());
      sent.push(...hs);
      raw.send({ type: "ihave", id: randomId(), to: [], hs, ks: batch.map((r) => r.k) });
    }
    // Malformed keys are dropped, the message stays: its hashes are asked for.
    const odd = [fake(), fake()];
    raw.send({ type: "ihave", id: randomId(), to: [], hs: odd, ks: ["only one"] });
    await waitUntil(() => [...sent, ...odd].every((h) => grafted.has(h)), 30_000, "every unheld hash to be asked for");
    assert.ok(reads <= 1024, `${reads} store reads for 1,800 named keys within a second`);
    assert.equal(raw.isClosed, false, "not struck for announcing");
    assert.deepEqual(await contents(victim), before, "the victim's data is intact");
  });

  it("1,800 hashes come due at once on a link of 64 KiB frames: every one is grafted, in frames that fit", { timeout: T }, async () => {
    const victim = await server();
    const raw = await RawLink.open(portOf(victim), { topic: TOPIC });
    await raw.provenHandshake({ isServer: true, caps: [TREE_CAPABILITY] });
    const grafted = new Set<string>();
    raw.onFrame((f) => {
      if (f.type === "graft") for (const h of f.hs as string[]) grafted.add(h);
    });
    const fake = () => randomId().padEnd(64, "0").replace(/[^0-9a-f]/g, "a").slice(0, 64);
    // Without keys nothing is looked up: both messages' hashes come due in the same repair round. A graft of 1,024
    // hashes (69 KB) was over the victim's frame limit and never sent: those were never asked for.
    const sent = Array.from({ length: 1800 }, fake);
    for (let m = 0; m < 2; m++) raw.send({ type: "ihave", id: randomId(), to: [], hs: sent.slice(m * 900, m * 900 + 900) });
    await waitUntil(() => sent.every((h) => grafted.has(h)), 10_000, "every hash to be asked for");
    assert.equal(victim.network.traffic.oversize.get("graft") ?? 0, 0, "no graft frame over the limit");
  });
});
