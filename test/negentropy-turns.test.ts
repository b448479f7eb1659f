/**
 * The dialer's work on one large reply (up to tens of thousands of ranges
 * and ids) and on its next message lets other work in every TURN_MS, as a
 * responder's answer does (review: a reply was taken in, and the next
 * message built, in one turn of the event loop each; the longest such turn
 * at 300,000 records was ~100 ms). Counted with a clock of the test's own
 * that moves 1 ms each time it is read, not wall time.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Reconciler } from "../src/node/sync/negentropy.js";
import { Turns } from "../src/node/sync/negentropy-bounds.js";
import { ArraySource, randomItems } from "./helpers/array-source.js";

describe("the initiator's turns", () => {
  it("a large reply is taken in, and the next message built, over several turns; the run learns the same differences", { timeout: 60_000 }, async () => {
    const common = randomItems(6000, 1_000_000);
    const mine = [...common, ...randomItems(1500, 1_000_000)];
    const theirs = [...common, ...randomItems(1500, 1_000_000)];
    // No frame limit, no read budget: few messages, each as large as the differences make it.
    const initiator = new Reconciler(new ArraySource(mine), 0, true, 8);
    const responder = new Reconciler(new ArraySource(theirs), 0, false, 8);
    let now = 0;
    let charged = 0;
    initiator.turns = new Turns(() => charged++, () => now++);
    const have = new Set<string>();
    const need = new Set<string>();
    let out = await initiator.start();
    let largest = { ranges: 0, yields: 0 };
    let nextYields = 0;
    for (let rounds = 0; ; rounds++) {
      assert.ok(rounds < 100, "terminates");
      const reply = (await responder.reconcile(out.message)).output!;
      const [rangesBefore, yieldsBefore] = [initiator.ranges, initiator.turns.yields];
      const r = await initiator.take(reply, out);
      const took = { ranges: initiator.ranges - rangesBefore, yields: initiator.turns.yields - yieldsBefore };
      if (took.ranges > largest.ranges) largest = took;
      r.have.forEach((id) => have.add(id));
      r.need.forEach((id) => need.add(id));
      const before = initiator.turns.yields;
      const next = await initiator.next();
      nextYields += initiator.turns.yields - before;
      if (!next) break;
      out = next;
    }
    assert.ok(largest.ranges > 1000, `the largest reply held ${largest.ranges} ranges`);
    // Before: no turn handed over at all.
    assert.ok(largest.yields >= 2, `the largest reply (${largest.ranges} ranges) was taken in over ${largest.yields + 1} turns`);
    assert.ok(nextYields >= 2, `building the messages handed over ${nextYields} turns`);
    assert.equal(charged, initiator.turns.yields, "each turn's end is reported (range-sync.ts charges the work then)");
    assert.deepEqual([...have].sort(), mine.slice(common.length).map((i) => i.id).sort());
    assert.deepEqual([...need].sort(), theirs.slice(common.length).map((i) => i.id).sort());
  });
});
