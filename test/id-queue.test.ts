import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IdQueue } from "../src/node/sync/id-queue.js";

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `id${from + i}`);

describe("IdQueue (ids a reconciliation run fetches in the background)", () => {
  it("fetches every id once, in batches, with at most `concurrency` fetches in flight", async () => {
    const fetched: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const queue = new IdQueue(
      async (batch) => {
        assert.ok(batch.length <= 10);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise<void>((resolve) => setImmediate(resolve));
        inFlight--;
        fetched.push(...batch);
        return [];
      },
      10,
      3,
      1000,
    );
    await queue.add(ids(0, 95));
    await queue.add(ids(95, 5));
    await queue.drain();
    assert.deepEqual([...fetched].sort(), ids(0, 100).sort());
    assert.equal(maxInFlight, 3);
  });

  it("add waits while more than maxQueued ids are waiting (memory stays bounded)", async () => {
    const gates: (() => void)[] = [];
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    const queue = new IdQueue(() => new Promise<string[]>((resolve) => gates.push(() => resolve([]))), 10, 1, 20);
    let added = false;
    const adding = queue.add(ids(0, 50)).then(() => (added = true));
    await tick();
    assert.equal(added, false, "50 - 10 in flight = 40 queued > 20: add must wait");
    gates.shift()!(); // the next batch is taken: 30 queued
    await tick();
    assert.equal(added, false);
    gates.shift()!(); // 20 queued: room
    await adding;
    let drained = false;
    const draining = queue.drain().then(() => (drained = true));
    while (!drained) {
      gates.shift()?.();
      await tick();
    }
    await draining;
  });

  it("ids the peer could not fit are asked for again", async () => {
    const asked: string[][] = [];
    const queue = new IdQueue(async (batch) => (asked.push(batch), asked.length === 1 ? batch.slice(2) : []), 4, 1, 100);
    await queue.add(ids(0, 4));
    await queue.drain();
    assert.deepEqual(asked, [ids(0, 4), ids(2, 2)]);
  });

  it("a failed fetch ends the queue: drain and later adds reject with it, other ids are not fetched", async () => {
    let calls = 0;
    const queue = new IdQueue(async () => {
      calls++;
      throw new Error("link closed");
    }, 5, 1, 100);
    await queue.add(ids(0, 20));
    await assert.rejects(queue.drain(), /link closed/);
    await assert.rejects(queue.add(ids(20, 1)), /link closed/);
    assert.equal(calls, 1);
  });
});
