/**
 * What announcements (IHAVE) cost the servers that take them
 * (src/node/broadcast/held-check.ts).
 *
 * An ihave's named keys are looked up in the store, each as a get would
 * read it; an ihave was charged one message of the link's rate however many
 * keys it named, so under a low `messageRate` a peer made the server read
 * far more keys than it may send gets. Each lookup now takes a message of
 * the same allowance; past it the hash is asked for as before.
 *
 * Real servers on loopback sockets; a raw link plays the announcer.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TREE_CAPABILITY } from "../src/node/broadcast/broadcast-tree.js";
import { randomId } from "../src/base/random.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { portOf, waitUntil } from "./helpers/nodes.js";
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
