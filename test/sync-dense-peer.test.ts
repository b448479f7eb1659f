/**
 * Two honest servers whose stores differ in density (found in review of the
 * range-sync cost fix): the dialer charges its work on the responder's
 * answers to the responder's budget, sized by the dialer's own store. A
 * dialer holding 1 record in 20 of its peer's makes about 27 ranges of work
 * per record of its own out of the peer's splits (each of its ranges with a
 * few records comes back as 16 pieces, each an id list then), about 220
 * items of work a record against a budget of 24 a record (+ 10,000): the run
 * stops with the budget "used up", and the peer's own run is then refused
 * by the dialer on the same buckets. Simulated on LevelDB indexes: 2,500
 * records against 50,000, 567,000 items of work against 300,000.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "sync-dense-peer";

describe("a sparse server reconciling with a dense one", () => {
  const fx = attackFixture(TOPIC, 30_000);

  // Not fixed (reported): the budget a dialer holds for a responder is sized by the dialer's own store, the honest work by the
  // responder's. The first run stops after 3 rounds (work 350,000-391,000 of 300,000), every retry is refused the same
  // way, and after 90 s the sparse server held 26,203 of the 50,000 records. A sparse responder answering a dense
  // dialer runs out the same way (simulated: 773,000 items of work against 360,000 at 1 record in 20).
  const todo = "a dialer's budget for its responder is sized by its own store (see the comment above)";
  it("completes its run within its budget for the peer, and both stores converge", { timeout: T, todo }, async () => {
    const records = await signedRecords(50_000, "k/", Date.now() - 10_000_000);
    const { db: dense } = await fx.server();
    await seed(dense, records);
    const { db: sparse } = await fx.server();
    await seed(sparse, records.filter((_, i) => i % 20 === 0));
    const runs: RangeSyncRun[] = [];
    sparse.sync.range!.on("done", (run) => runs.push(run));
    sparse.network.connectTo("127.0.0.1", (dense.network as unknown as { port: number }).port);
    await waitUntil(() => runs.length >= 1, T, "the sparse server's first run");
    const first = runs[0]!;
    assert.ok(first.complete, `the first run: ${JSON.stringify(first)}`);
    await waitUntil(async () => (await contents(sparse)).size === records.length, 60_000, "the sparse server holds every record");
  });
});
