/** Storage compliance, part 3: concurrent and unawaited writes, reads during writes, what survives a reopen. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../../src/base/errors.js";
import { type StorageSuiteContext, toolDbError } from "./storage-suite-context.js";

export function concurrencyTests({ factory, nextName, track, open }: StorageSuiteContext): void {
  describe("concurrency", () => {
    it("1000 parallel puts are all readable afterwards", async () => {
      const store = await open();
      const n = 1000;
      const key = (i: number) => `c:${String(i).padStart(4, "0")}`;
      await Promise.all(Array.from({ length: n }, (_, i) => store.put(key(i), `value ${i}`)));
      const values = await Promise.all(Array.from({ length: n }, (_, i) => store.get(key(i))));
      values.forEach((v, i) => assert.equal(v, `value ${i}`));
      const keys = await store.query("c:");
      assert.equal(keys.length, n);
      assert.deepEqual(keys, Array.from({ length: n }, (_, i) => key(i)));
    });

    it("parallel puts to one key leave one of the written values", async () => {
      const store = await open();
      const written = Array.from({ length: 50 }, (_, i) => `v${i}`);
      await Promise.all(written.map((v) => store.put("same", v)));
      assert.ok(written.includes((await store.get("same"))!));
      assert.deepEqual(await store.query("same"), ["same"]);
    });

    it("writes issued without awaiting apply in the order issued: the last put or del of a key wins", async () => {
      const store = await open();
      const ops: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        const key = `o${String(i).padStart(3, "0")}`;
        if (i % 3 === 0) ops.push(store.put(key, "first"), store.put(key, "last"));
        else if (i % 3 === 1) ops.push(store.put(key, "first"), store.del(key));
        else ops.push(store.put(key, "first"), store.del(key), store.put(key, "last"));
      }
      await Promise.all(ops);
      const values = await Promise.all(Array.from({ length: 300 }, (_, i) => store.get(`o${String(i).padStart(3, "0")}`)));
      values.forEach((v, i) => assert.equal(v, i % 3 === 1 ? undefined : "last", `key ${i}`));
      assert.equal((await store.query("o")).length, 200);
    });

    it("a burst of 5000 puts, dels and gets in one turn settles with every value right", async () => {
      const store = await open();
      const key = (i: number) => `b:${String(i).padStart(4, "0")}`;
      await Promise.all(Array.from({ length: 1000 }, (_, i) => store.put(key(i), `old ${i}`)));
      // Gets of keys written before the burst see them; the burst's own writes land in order.
      const reads = Array.from({ length: 1000 }, (_, i) => store.get(key(i)));
      const writes = Array.from({ length: 4000 }, (_, i) => (i % 4 === 3 ? store.del(key(i)) : store.put(key(i), `new ${i}`)));
      const seen = await Promise.all(reads);
      await Promise.all(writes);
      seen.forEach((v, i) => assert.ok(v === `old ${i}` || v === `new ${i}` || v === undefined, `key ${i}: ${v}`));
      const after = await Promise.all(Array.from({ length: 4000 }, (_, i) => store.get(key(i))));
      after.forEach((v, i) => assert.equal(v, i % 4 === 3 ? undefined : `new ${i}`, `key ${i}`));
    });

    it("every put that resolved before close is there after reopen, also when issued without awaiting", { skip: factory.reopen ? false : "not a persistent store" }, async () => {
      const storageName = nextName();
      const first = track(await factory.create(storageName));
      await first.ready;
      const puts = Array.from({ length: 2000 }, (_, i) => first.put(`w${String(i).padStart(4, "0")}`, String(i)));
      const closed = first.close();
      const results = await Promise.allSettled(puts);
      await closed;
      const second = track(await factory.reopen!(storageName));
      await second.ready;
      const kept = await second.query("w");
      results.forEach((r, i) => {
        if (r.status === "rejected") toolDbError(ErrorCode.CLOSED)(r.reason);
        else assert.ok(kept.includes(`w${String(i).padStart(4, "0")}`), `resolved put ${i} lost`);
      });
    });

    it("reads interleaved with writes never reject", async () => {
      const store = await open();
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 200; i++) {
        ops.push(store.put(`r${i % 10}`, `${i}`), store.get(`r${(i + 5) % 10}`), store.query("r", 5));
      }
      await assert.doesNotReject(Promise.all(ops));
      assert.equal((await store.query("r")).length, 10);
    });
  });
}
