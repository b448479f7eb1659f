/**
 * Two honest servers whose stores differ in density (found in review of the
 * range-sync cost fix): the dialer charged its work on the responder's
 * answers to the responder's budget, sized by the dialer's own store. A
 * dialer holding 1 record in 20 of its peer's did about 12 items of work
 * per record it lacked against a budget of 24 a record of its own
 * (+ 10,000): its first run stopped after 3-4 rounds with the budget "used
 * up", every retry was refused the same way, and after 90 s it held 26,203
 * of 50,000 records. A sparse responder answering a dense dialer ran out
 * the same way. Now each record new here, fetched or pushed, gives its
 * sender NEW_RECORD_CREDIT (32) of that work back, so both directions
 * finish in one run. Real sockets, LevelDB, default budgets but for their
 * slack, scaled down with the store (10,000 records and a slack of 2,000 size
 * every budget as 50,000 records and the default 10,000 did, at a fifth of
 * the signing and verifying), and their window: no bucket refills during
 * the test, so what a bucket holds after the run is its capacity less the
 * work charged to it plus the credit it kept, exactly.
 *
 * Whether a run completes without the credit depends on how much work it
 * happens to do (the reads per message adapt to the link's timings): with
 * NEW_RECORD_CREDIT at 0 the dense dialer's first run stopped on the budget
 * in 4 of 7 runs, the sparse dialer's always completed (its budget is sized
 * by the larger store, SyncBudget.sizeAtLeast). So each test also reads the
 * sparse server's bucket the credit goes to when the run is done: without
 * the credit it holds less than before the run whatever the timings (the
 * work, never refilled, was never paid back); with it, the records taken in
 * paid back all the work and more. Checked with the credit disabled in
 * SyncGate.newRecords: both tests failed in 7 of 7 runs (the dense dialer's
 * on its first run stopping in 4, on its bucket in 3); with
 * NEW_RECORD_CREDIT at 0, in 3 of 3.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { ToolDb, ToolDbOptions, ToolDbRecord } from "../src/index.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { watchAskingBuckets } from "./helpers/budget-watch.js";
import { waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 180_000;
const TOPIC = "sync-dense-peer";
const RECORDS = 10_000;
/**
 * The default slack (10,000) is 1/5 of the 50,000 records the failure was found at: 1/5 of these. The window is
 * so long that no bucket refills meanwhile (a refill is elapsed / window of its capacity): the accounting is exact.
 */
const SCALED: Partial<ToolDbOptions> = { rangeSync: { budget: { slack: RECORDS / 5, windowMs: Number.MAX_SAFE_INTEGER } } };

describe("a sparse server reconciling with a dense one", { timeout: T }, () => {
  const fx = attackFixture(TOPIC, 30_000);
  let records: ToolDbRecord[];
  before(async () => {
    records = await signedRecords(RECORDS, "k/", Date.now() - 10_000_000);
  });

  /** A dense server (every record) and a sparse one (1 in 20). */
  async function pair(): Promise<{ dense: ToolDb; sparse: ToolDb }> {
    const { db: dense } = await fx.server(SCALED);
    await seed(dense, records);
    const { db: sparse } = await fx.server(SCALED);
    await seed(sparse, records.filter((_, i) => i % 20 === 0));
    return { dense, sparse };
  }

  const portOf = (db: ToolDb) => (db.network as unknown as { port: number }).port;

  /**
   * The scans the sparse server's bucket for the dense one holds (the one the credit goes to: its asking buckets
   * when the dense server dials, its buckets for its work on the dense one's answers when it dials itself); NaN
   * without a link to the dense one (read in an event handler: the assertion on it fails instead of a throw here).
   */
  function creditedBucket(dense: ToolDb, sparse: ToolDb, dialer: "sparse" | "dense"): number {
    const gate = sparse.sync.range!.gate;
    const link = sparse.network.peers.find((p) => p.address === dense.nodeAddress());
    if (!link) return NaN;
    return dialer === "dense" ? gate.remaining(link, "scans") : gate.answersRemaining(link);
  }

  for (const dialer of ["sparse", "dense"] as const) {
    it(`the ${dialer} server dials: its first run completes within the budgets, paid by the records new to the sparse store, which converges`, { timeout: T }, async () => {
      const { dense, sparse } = await pair();
      const [from, to] = dialer === "sparse" ? [sparse, dense] : [dense, sparse];
      const { scansPerItem, slack } = sparse.sync.range!.gate.budget.options;
      const runs: RangeSyncRun[] = [];
      let left = NaN; // read as the run reports, before anything else may charge the bucket
      from.sync.range!.on("done", (run) => {
        if (runs.push(run) === 1) left = creditedBucket(dense, sparse, dialer);
      });
      const watch = watchAskingBuckets(sparse, dense);
      from.network.connectTo("127.0.0.1", portOf(to));
      await waitUntil(() => runs.length >= 1, T, "the first run");
      const first = runs[0]!;
      assert.ok(first.complete, `the first run: ${JSON.stringify(first)}`);
      assert.equal(first.mode, "range");
      assert.equal(dialer === "sparse" ? first.fetched : first.pushed, records.length - records.length / 20);
      // Without the credit the bucket ends at what it held before less the run's work (no refill): the dense dialer's
      // asking bucket at the sparse store's own capacity less the sparse server's work on its requests; the sparse
      // dialer's, sized by the dense store, less `first.work` (it charges exactly that). With the credit it ends
      // above: the bucket filled up at some point (and only work after that is missing) or never did (and holds all
      // the credit, 32 × 9,500 items, more than the run's work). One item is the margin asked for: the refill over
      // the run is less than 1/10,000 of one; with the credit the bucket ended full (288,000: the capacity grows with
      // the store) against at most 60,000 (dense dialer) and about 150,000-200,000 (sparse dialer) without.
      const sizedBy = dialer === "dense" ? records.length / 20 : records.length;
      const unpaid = (sizedBy + slack) * scansPerItem - (dialer === "dense" ? 0 : first.work!);
      assert.ok(left >= unpaid + 1, `the sparse server's bucket for the dense one after the run: ${left} scans, without credit at most ${unpaid} (${JSON.stringify(first)})`);
      // The margin, asserted rather than left to how the credit happened to interleave with the work: the sparse
      // server's asking buckets for the dense dialer never emptied (peak 50,181-54,913 of 60,000 measured: 8-16 % to
      // spare at this scaled-down size, where the short run's credit comes late; at the size it models, 50,000 records
      // against 2,500 at the default budgets, the peak was 13 % of the capacity; sync-dense-budget-shapes.test.ts).
      if (dialer === "dense") assert.ok(watch.peak < watch.capacity, `the asking buckets' peak: ${JSON.stringify(watch)}`);
      await waitUntil(async () => (await contents(sparse)).size === records.length, 60_000, "the sparse server holds every record");
    });
  }
});
