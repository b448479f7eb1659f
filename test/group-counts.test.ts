/**
 * GroupCounts: the count per group and the largest group, kept as entries
 * come and go (what GroupedBoundedSet and the pending-request shares evict
 * from when full).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupCounts } from "../src/base/group-counts.js";

describe("group counts", { timeout: 10_000 }, () => {
  it("counts per group; an empty or unknown group is at 0 and none is the largest", () => {
    const counts = new GroupCounts<string>();
    assert.equal(counts.largest(), undefined);
    counts.increment("a");
    counts.increment("a");
    counts.increment("b");
    assert.deepEqual([counts.count("a"), counts.count("b"), counts.count("c")], [2, 1, 0]);
    counts.decrement("c"); // nothing below 0
    assert.equal(counts.count("c"), 0);
    counts.decrement("b");
    counts.decrement("a");
    counts.decrement("a");
    assert.deepEqual([counts.count("a"), counts.count("b")], [0, 0]);
    assert.equal(counts.largest(), undefined);
  });

  it("names the largest group, and among groups of that count the first to reach it", () => {
    const counts = new GroupCounts<string>();
    for (const g of ["a", "b", "c"]) counts.increment(g);
    assert.equal(counts.largest(), "a");
    counts.increment("c");
    counts.increment("b");
    assert.equal(counts.largest(), "c", "c reached 2 before b");
    // Leaving a count and coming back makes a group the last of that count.
    counts.decrement("c");
    counts.increment("c");
    assert.equal(counts.largest(), "b");
  });

  it("follows the largest down as groups shrink, and up again", () => {
    const counts = new GroupCounts<number>();
    for (let i = 0; i < 5; i++) counts.increment(1);
    for (let i = 0; i < 3; i++) counts.increment(2);
    counts.increment(3);
    assert.equal(counts.largest(), 1);
    for (let i = 0; i < 3; i++) counts.decrement(1);
    assert.equal(counts.largest(), 2, "1 fell to 2 after 2 reached 3");
    for (let i = 0; i < 3; i++) counts.decrement(2);
    assert.equal(counts.largest(), 1);
    for (let i = 0; i < 2; i++) counts.decrement(1);
    assert.equal(counts.largest(), 3, "down to the last group of one");
    for (let i = 0; i < 4; i++) counts.increment(2);
    assert.equal(counts.largest(), 2);
  });

  it("finds the largest among many groups without a scan per call", () => {
    const counts = new GroupCounts<string>();
    // 100,000 groups of one and one of two: each call answers from the index (a scan per call would take minutes).
    for (let i = 0; i < 100_000; i++) counts.increment(`g${i}`);
    counts.increment("g99999");
    for (let i = 0; i < 100_000; i++) assert.equal(counts.largest(), "g99999");
  });
});
