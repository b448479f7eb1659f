/**
 * A range run stopped short resumes where it left off (range-frontier.ts).
 * Runs go about breadth first and records move only at the last level, so
 * a run the responder's budget stops spent it on the upper levels; run
 * again from the top, the next spent it there again (densebudget's
 * measurement: 9 runs moved 4, 4, 0, 4, 4, 0, 0, 372 and 2,572 of 9,500
 * records). Here a small budget is forced (as sync-dense-peer-budget does)
 * on a pair that earns the responder's buckets no credit (the dialer holds
 * a part of its records), on one manual clock: each run ends, the clock
 * moves past the retry backoff and the window (the budget refills whole),
 * and the next run begins. Real sockets, memory stores.
 */
import assert from "node:assert/strict";
import { type TestContext, before, describe, it } from "node:test";
import type { ToolDb, ToolDbOptions, ToolDbRecord } from "../src/index.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { linkServers, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
const TOPIC = "sync-range-frontier";
const N = 4000;
/**
 * The responder's budget: (4,000 + 500) × 12 = 54,000 items a window, against ~100,000 of honest work on its side
 * for this shape (charged to it, as sync-dense-budget-shapes measures): a run from the top stops about halfway down.
 */
const BUDGET = { slack: 500, scansPerItem: 8, windowMs: 60_000 };
/** Past the longest retry backoff (60 s × 0.75 at random 0.5), the repeat window (60 s) and the budget's window. */
const STEP_MS = 72_000;
/** Runs allowed to converge: before the frontier, 10 runs moved 64, 3, 0, 0, 0, 0, 0, 0, 0 and 0 of 3,000 records. */
const K = 6;

/** `responder` drops the link as a dialer asks its second round, once. */
function dropAtSecondRound(responder: ToolDb): void {
  const range = responder.sync.range!;
  const handle = range.handle.bind(range);
  let answered = 0;
  range.handle = (message, from) => {
    if (message.type === "syncRange" && ++answered === 2) from.connection.close(1000, "test: the link drops");
    return handle(message, from);
  };
}

/** Links `dialer` to `responder` again once their link closed; waits for the run the new link starts. */
async function relink(dialer: ToolDb, responder: ToolDb, runs: RangeSyncRun[]): Promise<void> {
  const seen = runs.length;
  await waitUntil(() => dialer.network.peers.length === 0, T, "the link closed");
  await linkServers(dialer, responder);
  await waitUntil(() => runs.length > seen && dialer.syncProgress.running === 0, T, "the run on the new link");
}

describe("a range run stopped by the budget resumes from its frontier", { timeout: T }, () => {
  const fx = attackFixture(TOPIC, 30_000);
  let records: ToolDbRecord[];
  let later: ToolDbRecord[];
  let newer: ToolDbRecord[];
  before(async () => {
    const t0 = Date.now() - 10_000_000;
    records = await signedRecords(N, "k/", t0);
    // Written between runs, at the first quarter's times: in ranges the first run found equal (test 2).
    later = await signedRecords(N / 4, "new/", t0);
    newer = await signedRecords(16, "k/", t0 + 1, "v2"); // newer versions of k/0 to k/15
  });

  /** The responder holds every record, the dialer those `held` picks; one run at a time, each its own window of budget. */
  async function pair(held: (i: number) => boolean, budget: Partial<typeof BUDGET> = BUDGET) {
    const clock = new ManualClock(Date.now());
    const common: Partial<ToolDbOptions> = { clock, random: () => 0.5, heartbeatInterval: 3_600_000 };
    const { db: responder } = await fx.server({ ...common, rangeSync: { budget } });
    await seed(responder, records);
    const { db: dialer } = await fx.server(common);
    await seed(dialer, records.filter((_, i) => held(i)));
    const runs: RangeSyncRun[] = [];
    dialer.sync.range!.on("done", (run) => runs.push(run));
    await linkServers(dialer, responder);
    /** The next run: the clock moved past its backoff and a whole window (none for the first, which the link starts). */
    const next = async (): Promise<RangeSyncRun> => {
      const seen = runs.length;
      if (seen > 0) clock.advance(STEP_MS);
      await waitUntil(() => runs.length > seen && dialer.syncProgress.running === 0, T, `run ${seen + 1}`);
      return runs[seen]!;
    };
    /** Runs until one completes, `max` at most; what each fetched. */
    const converge = async (t: TestContext, max: number, between?: (run: RangeSyncRun) => Promise<void>): Promise<number[]> => {
      const fetched: number[] = [];
      for (let run: RangeSyncRun | undefined; !run?.complete && fetched.length < max; ) {
        run = await next();
        fetched.push(run.fetched);
        t.diagnostic(JSON.stringify(run));
        if (!run.complete) await between?.(run);
      }
      t.diagnostic(`fetched ${fetched.join(", ")}`);
      return fetched;
    };
    return { dialer, responder, runs, next, converge };
  }

  it(`${N} records, a quarter held by the dialer, no credit: converges within ${K} runs, each resumed one moving records`, { timeout: T }, async (t) => {
    const { dialer, responder, runs, converge } = await pair((i) => i % 4 === 0);
    const fetched = await converge(t, K);
    assert.ok(runs.at(-1)!.complete, `not converged in ${K} runs: fetched ${fetched.join(", ")}`);
    assert.ok(fetched.length > 1, "the budget stopped the first run");
    assert.ok(fetched.slice(1).every((n) => n > 0), `every resumed run moved records: ${fetched.join(", ")}`);
    assert.ok(runs.slice(1).every((run) => (run.resumedRanges ?? 0) > 0), "each run after the first resumed from a frontier");
    assert.deepEqual(await contents(dialer), await contents(responder));
    assert.equal(dialer.sync.range!.frontiers.size, 0, "a complete run keeps no frontier");
  });

  it("records written on both sides between runs, in ranges already found equal, are not missed", { timeout: T }, async (t) => {
    // The first half held by both (found equal by the first run), an eighth of the rest by the dialer.
    const { dialer, responder, runs, next, converge } = await pair((i) => i < N / 2 || i % 8 === 0);
    dropAtSecondRound(responder); // the first run stops there if the budget did not stop it before
    const first = await next();
    t.diagnostic(JSON.stringify(first));
    assert.ok(!first.complete && (first.savedRanges ?? 0) > 0, "the first run saved a frontier");
    // The frontier leaves out most of the first half (it begins where a bucket of the dialer's index does, one item in
    // 256 at random: before the quarter's end about once in 10^3): only the whole-set check can find what is written there.
    const frontier = dialer.sync.range!.frontiers.peek(responder.nodeAddress())!;
    const outside = later.filter((r) => r.t < frontier[0]!.lower.t).length;
    t.diagnostic(`${outside} of the ${later.length} records written next lie before the frontier`);
    assert.ok(outside >= later.length / 4, `the frontier begins at ${frontier[0]!.lower.t - later[0]!.t} ms past the first record written next`);
    // New keys at the first quarter's times on both sides, and newer versions of keys both hold, on the responder.
    await seed(responder, [...later.filter((_, i) => i % 2 === 0), ...newer]);
    await seed(dialer, later.filter((_, i) => i % 2 === 1));
    await relink(dialer, responder, runs);
    const fetched = [first.fetched, runs[1]!.fetched, ...(runs[1]!.complete ? [] : await converge(t, K))];
    assert.ok(runs.at(-1)!.complete, `not converged: fetched ${fetched.join(", ")}`);
    assert.ok((runs[1]!.resumedRanges ?? 0) > 0, "the next run resumed from the frontier");
    const held = await contents(responder);
    assert.equal(held.size, N + N / 4);
    assert.deepEqual(await contents(dialer), held);
    assert.equal(held.get("k/0"), newer[0]!.h);
  });

  it("a run a dropped link stopped resumes on the next link with the same peer", { timeout: T }, async (t) => {
    const { dialer, responder, runs, next } = await pair((i) => i % 4 === 0, {}); // the default budget: only the link stops it
    dropAtSecondRound(responder);
    const first = await next();
    t.diagnostic(JSON.stringify(first));
    assert.equal(first.complete, false);
    assert.ok((first.savedRanges ?? 0) > 0, "a frontier saved");
    await relink(dialer, responder, runs);
    t.diagnostic(JSON.stringify(runs[1]));
    assert.ok(runs[1]!.complete);
    assert.ok((runs[1]!.resumedRanges ?? 0) > 0, `the run on the new link resumed: ${JSON.stringify(runs[1])}`);
    assert.deepEqual(await contents(dialer), await contents(responder));
  });
});
