/**
 * The bookkeeping of range-frontier.ts on its own: what a run stopped short
 * saves, that it is bounded, expires and covers every range it was given,
 * and that a resumed run ends with the whole-set check. The runs between
 * real servers are in sync-range-frontier.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, ToolDbError } from "../src/base/errors.js";
import type { Reconciler } from "../src/node/sync/negentropy.js";
import { type Bound, INFINITY_BOUND, MIN_BOUND, Mode, compareBounds } from "../src/node/sync/negentropy-codec.js";
import type { InitiatorMessage, WorkItem } from "../src/node/sync/negentropy-resume.js";
import { FRONTIER_MAX_AGE_MS, FrontierRun, MAX_FRONTIER_RANGES, RangeFrontiers, coarsen, disjoint } from "../src/node/sync/range-frontier.js";

const T = 10_000;
const at = (t: number): Bound => ({ t, id: "" });
const split = (lo: number, hi: number): WorkItem => ({ kind: "input", lower: at(lo), upper: at(hi), mode: Mode.Fingerprint });
const resend = (lo: number, hi: number, mode: Mode.Fingerprint | Mode.IdList = Mode.Fingerprint): WorkItem => ({ kind: "resend", lower: at(lo), upper: at(hi), mode });
const message = (...ranges: Array<[number, number]>): InitiatorMessage => ({ message: new Uint8Array([0x61]), sent: ranges.map(([lo, hi]) => ({ lower: at(lo), upper: at(hi), mode: Mode.Fingerprint })) });
const span = (items: readonly WorkItem[]) => items.map((i) => [i.lower.t, i.upper.t]);

/** A reconciler as FrontierRun uses it: its pending ranges, and messages built of them. */
function fakeReconciler(pending: WorkItem[] = []) {
  const built: WorkItem[][] = [];
  const r = {
    pending,
    get pendingRanges() {
      return r.pending.length;
    },
    start: () => Promise.resolve(message([0, Infinity])),
    next: () => {
      if (r.pending.length === 0) return Promise.resolve(undefined);
      built.push(r.pending);
      const m = { message: new Uint8Array([0x61]), sent: r.pending.map(({ lower, upper, mode }) => ({ lower, upper, mode })) };
      r.pending = [];
      return Promise.resolve(m);
    },
  };
  return { reconciler: r as unknown as Reconciler, built, r };
}

describe("range frontiers", { timeout: T }, () => {
  it("a run stopped short saves its pending ranges and unanswered messages, in order; the next run takes them once", () => {
    const frontiers = new RangeFrontiers(() => 0);
    const { reconciler } = fakeReconciler([split(30, 40), resend(50, 60)]);
    const run = new FrontierRun(frontiers, "peer", reconciler);
    run.built(message([10, 20], [20, 25]));
    const answered = run.built(message([70, 80]));
    run.taken(answered, [{ lower: at(72), upper: at(74), mode: Mode.IdList, ids: ["a", "b"] }]);
    run.moved(["a"]); // "b" never fetched: its id list is sent again
    assert.equal(run.ended(false, new ToolDbError(ErrorCode.SYNC_FAILED, "sync budget (scans) used up")), 5);
    assert.deepEqual(span(frontiers.peek("peer")!), [[10, 20], [20, 25], [30, 40], [50, 60], [72, 74]]);
    assert.equal(frontiers.peek("peer")![4]!.mode, Mode.IdList);
    const next = new FrontierRun(frontiers, "peer", fakeReconciler().reconciler);
    assert.equal(next.resumed, 5);
    assert.equal(frontiers.size, 0, "taken, not left for another run");
  });

  it("a run a bad message ended, or one that completed, keeps nothing", () => {
    const frontiers = new RangeFrontiers(() => 0);
    frontiers.save("peer", [split(1, 2)]);
    const run = new FrontierRun(frontiers, "peer", fakeReconciler([split(30, 40)]).reconciler);
    assert.equal(run.ended(false, new ToolDbError(ErrorCode.BAD_MESSAGE, "a reply range outside the ranges asked about")), 0);
    assert.equal(frontiers.size, 0);
    frontiers.save("peer", [split(1, 2)]);
    assert.equal(new FrontierRun(frontiers, "peer", fakeReconciler().reconciler).ended(true), 0);
    assert.equal(frontiers.size, 0);
  });

  it(`expires after ${FRONTIER_MAX_AGE_MS} ms`, () => {
    let now = 0;
    const frontiers = new RangeFrontiers(() => now);
    frontiers.save("a", [split(1, 2)]);
    frontiers.save("b", [split(1, 2)]);
    now += FRONTIER_MAX_AGE_MS;
    assert.equal(frontiers.take("a")?.length, 1);
    now += 1;
    assert.equal(frontiers.take("b"), undefined);
  });

  it(`keeps at most ${MAX_FRONTIER_RANGES} ranges, covering every range it was given`, () => {
    const items = Array.from({ length: 5 * MAX_FRONTIER_RANGES + 3 }, (_, i) => (i % 2 ? resend(10 * i, 10 * i + 5, Mode.IdList) : split(10 * i, 10 * i + 5)));
    const frontiers = new RangeFrontiers(() => 0);
    assert.ok(frontiers.save("peer", items) <= MAX_FRONTIER_RANGES);
    const kept = frontiers.peek("peer")!;
    assert.ok(kept.length <= MAX_FRONTIER_RANGES && kept.length > MAX_FRONTIER_RANGES / 2);
    for (const item of items) assert.ok(kept.some((k) => compareBounds(k.lower, item.lower) <= 0 && compareBounds(item.upper, k.upper) <= 0), `${item.lower.t} covered`);
    for (let i = 1; i < kept.length; i++) assert.ok(compareBounds(kept[i - 1]!.upper, kept[i]!.lower) <= 0, "in order, disjoint");
    assert.equal(coarsen(items.slice(0, 3), 3).length, 3, "under the cap: as given");
  });

  it("ranges inside another go, overlapping ones become one covering both (a message must carry them in order)", () => {
    const out = disjoint([resend(50, 60), split(10, 20), split(12, 14), resend(15, 30), split(60, 70)]);
    assert.deepEqual(span(out), [[10, 30], [50, 60], [60, 70]]);
    assert.equal(out[0]!.kind, "input", "the merged range is split again");
  });

  it("a resumed run ends with the whole-set check, after its fetches settled; a run from the top does not", async () => {
    const frontiers = new RangeFrontiers(() => 0);
    frontiers.save("peer", [split(30, 40)]);
    const { reconciler, built } = fakeReconciler();
    const run = new FrontierRun(frontiers, "peer", reconciler);
    const next = () => reconciler.next();
    assert.deepEqual(span((await run.first(next))!.sent.map((r) => ({ ...r, kind: "resend" }) as WorkItem)), [[30, 40]]);
    assert.equal(run.whole, false, "not complete before the check (a run maxRounds stops there)");
    let settled = false;
    const check = await run.check(next, () => Promise.resolve((settled = true)));
    assert.ok(settled);
    assert.deepEqual(span(built[1]!), [[MIN_BOUND.t, INFINITY_BOUND.t]]);
    assert.ok(check);
    assert.equal(await run.check(next), undefined, "once");
    assert.equal(run.whole, true);
    const fresh = new FrontierRun(frontiers, "other", fakeReconciler().reconciler);
    assert.ok(await fresh.first(next));
    assert.equal(await fresh.check(next), undefined);
    assert.equal(fresh.whole, true);
  });
});
