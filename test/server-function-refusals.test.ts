/**
 * Over-rate server function calls are reported, not logged call by call
 * (review of the per-link rate): a link calling a rated function at the
 * message rate (2,000/s) made 2,000 `refused` events a second, each a log
 * line, a metrics increment and a status-history entry. Now one link's
 * over-rate calls make at most one event per RATE_REFUSAL_REPORT_MS: the
 * first at once, the rest of the period together when it ends, with their
 * `count`, so the counts still add up to every call refused (what
 * `tooldb_refusals_total` counts). On ServerFunctions with a clock the test
 * moves; and addServerFunction's options: an array or an unknown field (a
 * typo that left the function unbounded) is INVALID_ARGUMENT naming it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode } from "../src/base/errors.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { functionRate } from "../src/node/api-arguments.js";
import { RATE_REFUSAL_REPORT_MS, ServerFunctions, type ServerFunctionOptions } from "../src/node/server-functions.js";
import { ManualClock } from "./helpers/manual-clock.js";

/** A node's functions on a clock the test moves; `events` with the clock's time each was reported at. */
function setup() {
  const clock = new ManualClock(1_000_000);
  const events: Array<RefusalEvent & { at: number }> = [];
  const functions = new ServerFunctions({ options: { clock }, refused: (e) => events.push({ ...e, at: clock.now() }) });
  functions.add("status", () => "ok", { callsPerSecond: 1, burst: 4 });
  return { clock, events, functions };
}

/** Calls `name` on `link` once; true when admitted, else the refusal is reported through overRate as Protocol does. */
function call(functions: ServerFunctions, name: string, link: { clientId: string }): boolean {
  if (functions.admit(name, link)) return true;
  assert.match(functions.overRate(name, link), new RegExp(`^RATE_LIMITED: ${name} may be called `));
  return false;
}

const sum = (events: RefusalEvent[]) => events.reduce((n, e) => n + (e.count ?? 1), 0);

describe("over-rate server function calls: one refused event a second per link, counted exactly", () => {
  it("two links flooding at 2,000 calls/s for 10 s: at most one event per second each, the counts add up to every call refused", () => {
    const { clock, events, functions } = setup();
    const links = [{ clientId: "a" }, { clientId: "b" }];
    const refused = new Map<string, number>();
    const answered = new Map<string, number>();
    const end = clock.now() + 10_000;
    while (clock.now() < end) {
      for (const link of links) {
        const m = call(functions, "status", link) ? answered : refused;
        m.set(link.clientId, (m.get(link.clientId) ?? 0) + 1);
      }
      clock.advance(0.5);
    }
    clock.advance(RATE_REFUSAL_REPORT_MS); // the last period's report
    assert.equal(clock.pending, 0, "no report left waiting");
    for (const link of links) {
      const mine = events.filter((e) => e.peer === link.clientId);
      const calls = refused.get(link.clientId)!;
      assert.equal(answered.get(link.clientId), 4 + 9, "the burst, then 1/s (the 10th token comes at 10.0 s, after the last call)");
      assert.ok(calls > 19_900, `${calls} refused`);
      assert.ok(mine.length <= 11, `${mine.length} events for ${calls} refused calls in 10 s`);
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.at - mine[i - 1]!.at >= RATE_REFUSAL_REPORT_MS, `events ${i - 1} and ${i} ${mine[i]!.at - mine[i - 1]!.at} ms apart`);
      assert.equal(sum(mine), calls, "every refused call counted");
      assert.ok(mine.every((e) => e.code === ErrorCode.RATE_LIMITED));
      assert.equal(mine[0]!.count, 1, "the first at once");
      assert.match(mine[0]!.reason, /^server function call over its rate: RATE_LIMITED: status may be called 1\/s \(burst 4\) per link$/);
      assert.match(mine[1]!.reason, /^\d+ server function calls over their rate in 1\.0 s \(status ×\d+\), reported together/);
    }
    process.stdout.write(`# ${sum(events)} calls refused on 2 links in 10 s: ${events.length} refused events\n`);
  });

  it("after a quiet period the next over-rate call is reported at once; a single held call is reported when its period ends", () => {
    const { clock, events, functions } = setup();
    const link = { clientId: "a" };
    for (let i = 0; i < 4; i++) assert.ok(call(functions, "status", link));
    assert.equal(call(functions, "status", link), false);
    assert.equal(events.length, 1, "the first refusal at once");
    clock.advance(300);
    assert.equal(call(functions, "status", link), false);
    assert.equal(events.length, 1, "held within the period");
    clock.advance(699);
    assert.equal(events.length, 1);
    clock.advance(1);
    assert.equal(events.length, 2, "reported when the period ends");
    assert.equal(events[1]!.count, 1);
    assert.match(events[1]!.reason, /^1 server function call over its rate in 1\.0 s \(status ×1\)/);
    clock.advance(5000); // 5 tokens back, 4 of them kept (the burst)
    for (let i = 0; i < 4; i++) assert.ok(call(functions, "status", link));
    assert.equal(call(functions, "status", link), false);
    assert.equal(events.length, 3, "after a quiet period: at once");
    assert.equal(events[2]!.count, 1);
    assert.equal(clock.pending, 0);
    assert.equal(sum(events), 3);
  });

  it("one link flooding two rated functions: still one event a period, naming each function's share", () => {
    const { clock, events, functions } = setup();
    functions.add("other", () => "ok", { callsPerSecond: 2, burst: 1 });
    const link = { clientId: "a" };
    for (let i = 0; i < 10; i++) call(functions, "status", link);
    for (let i = 0; i < 5; i++) call(functions, "other", link);
    clock.advance(RATE_REFUSAL_REPORT_MS);
    assert.equal(events.length, 2);
    assert.equal(sum(events), 6 + 4);
    assert.match(events[1]!.reason, /^9 server function calls over their rate in 1\.0 s \(status ×5, other ×4\)/);
  });

  it("close drops the reports waiting", () => {
    const { clock, events, functions } = setup();
    const link = { clientId: "a" };
    for (let i = 0; i < 10; i++) call(functions, "status", link);
    assert.equal(clock.pending, 1);
    functions.close();
    assert.equal(clock.pending, 0);
    clock.advance(RATE_REFUSAL_REPORT_MS);
    assert.equal(events.length, 1);
  });
});

describe("addServerFunction's options", () => {
  const refused = (options: unknown, field: RegExp) =>
    assert.throws(() => functionRate(options as ServerFunctionOptions), (err: { code?: string; message?: string }) => err.code === ErrorCode.INVALID_ARGUMENT && field.test(err.message ?? ""), JSON.stringify(options));

  it("an unknown field (a typo that left the function unbounded) or an array is INVALID_ARGUMENT naming it", () => {
    refused({ callPerSecond: 1 }, /options\.callPerSecond is not an option of addServerFunction \(callsPerSecond, burst\)/);
    refused({ callsPerSecond: 1, bursts: 4 }, /options\.bursts is not an option/);
    refused({ callsPerSecond: 1, burst: 4, perLink: true }, /options\.perLink /);
    refused({ rate: undefined }, /options\.rate /);
    refused([], /options must be an object, got an array/);
    refused([1, 4], /options must be an object, got an array/);
    refused(null, /options must be an object, got null/);
    refused(5, /options must be an object, got number 5/);
  });

  it("known fields as before", () => {
    assert.equal(functionRate(undefined), undefined);
    assert.equal(functionRate({}), undefined);
    assert.equal(functionRate({ callsPerSecond: Infinity }), undefined);
    assert.equal(functionRate({ callsPerSecond: undefined }), undefined);
    assert.deepEqual(functionRate({ callsPerSecond: 1, burst: 4 }), { callsPerSecond: 1, burst: 4 });
    assert.deepEqual(functionRate({ callsPerSecond: 0.5 }), { callsPerSecond: 0.5, burst: 1 });
  });
});
