/**
 * node/sync/link-read-budget.ts: the initiator's reads per reconciliation
 * message grow while the link, not the work, holds the messages in flight,
 * shrink back when the link is fast again, stay within their bounds, and do
 * not move for a peer that does not say how long it held a message.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LinkReadBudget, baseReadsPerMessage, maxReadsPerMessage } from "../src/node/sync/link-read-budget.js";
import { parseMessage } from "../src/records/parse-message.js";
import { ErrorCode, isToolDbError } from "../src/base/errors.js";

const WIDTH = 3;

/** `n` exchanges, each `linkMs` on the link and `workMs` of work on each side; the budget after the last. */
function exchanges(budget: LinkReadBudget, n: number, linkMs: number, workMs: number): number {
  let reads = budget.current;
  for (let i = 0; i < n; i++) reads = budget.observe(linkMs + workMs, workMs, workMs);
  return reads;
}

describe("reads per reconciliation message, by link", () => {
  it("the base keeps the messages in flight in the cache; the most is 8 × that or 1/8 of the store", () => {
    assert.equal(baseReadsPerMessage(65_536, 100_000, WIDTH), 16_384);
    assert.equal(baseReadsPerMessage(65_536, 10_000_000, WIDTH), 100_000, "1/100 of a store far larger than the cache");
    assert.equal(maxReadsPerMessage(16_384, 100_000), 131_072);
    assert.equal(maxReadsPerMessage(16_384, 10_000_000), 1_250_000);
  });

  it("doubles after two windows of `width` replies in which the link took longer than the other messages in flight take to work through", () => {
    const budget = new LinkReadBudget(16_384, 131_072, WIDTH);
    assert.equal(exchanges(budget, WIDTH - 1, 200, 10), 16_384, "no change before `width` replies");
    assert.equal(exchanges(budget, 1, 200, 10), 16_384, "one link-bound window is not enough");
    assert.equal(exchanges(budget, WIDTH, 200, 10), 32_768);
    assert.equal(exchanges(budget, WIDTH, 200, 10), 32_768, "each growth takes two windows of its own");
    assert.equal(exchanges(budget, WIDTH, 200, 10), 65_536);
    assert.equal(exchanges(budget, WIDTH, 0.5, 10), 32_768, "fast again: halved");
    assert.equal(exchanges(budget, 2 * WIDTH, 25, 10), 65_536, "a link longer than the other messages' work: link-bound");
    assert.equal(exchanges(budget, 2 * WIDTH, 200, 20), 131_072);
    assert.equal(exchanges(budget, 4 * WIDTH, 200, 10), 131_072, "never past the most");
  });

  it("never grows on single link-bound windows between others (a busy spell of this side's event loop)", () => {
    const budget = new LinkReadBudget(16_384, 131_072, WIDTH);
    for (let i = 0; i < 20; i++) {
      exchanges(budget, WIDTH, 200, 10);
      exchanges(budget, WIDTH, 15, 10);
    }
    assert.equal(budget.current, 16_384);
  });

  it("stays at the base on a fast link, and when only one reply of the window was slow (it waited for this side, not for the link)", () => {
    const budget = new LinkReadBudget(16_384, 131_072, WIDTH);
    assert.equal(exchanges(budget, 30, 0.2, 10), 16_384);
    assert.equal(exchanges(budget, 30, 15, 10), 16_384, "the other two messages in flight take longer than the link: the work holds the pipeline");
    for (let i = 0; i < 10; i++) {
      budget.observe(10 + 100, 10, 10); // held 100 ms behind other work here
      budget.observe(10.2, 10, 10);
      budget.observe(10.1, 10, 10);
    }
    assert.equal(budget.current, 16_384);
  });

  it("halves back toward the base when the link becomes fast, and not below it", () => {
    const budget = new LinkReadBudget(16_384, 131_072, WIDTH);
    exchanges(budget, 6 * WIDTH, 500, 10);
    assert.equal(budget.current, 131_072);
    assert.equal(exchanges(budget, WIDTH, 1, 40), 65_536);
    assert.equal(exchanges(budget, 10 * WIDTH, 1, 40), 16_384);
  });

  it("keeps the base for a peer that does not say how long it held the messages (an older version), or for readings that are not numbers", () => {
    const budget = new LinkReadBudget(16_384, 131_072, WIDTH);
    for (let i = 0; i < 30; i++) budget.observe(500, undefined, 5);
    for (let i = 0; i < 30; i++) budget.observe(Number.NaN, 5, 5);
    assert.equal(budget.current, 16_384);
  });

  it("a reply's `ms` is optional, and when present a non-negative whole number of milliseconds", () => {
    const ack = (ms: unknown) => JSON.stringify({ type: "syncRangeAck", id: "r1", m: "YQ==", ms });
    assert.equal((parseMessage(ack(12)) as { ms?: number }).ms, 12);
    assert.equal((parseMessage(JSON.stringify({ type: "syncRangeAck", id: "r1", m: "YQ==" })) as { ms?: number }).ms, undefined);
    for (const wrong of [-1, 1.5, "12", 1e300, null])
      assert.throws(() => parseMessage(ack(wrong)), (err: unknown) => isToolDbError(err, ErrorCode.BAD_MESSAGE), `ms ${String(wrong)} refused`);
  });
});
