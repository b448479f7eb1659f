/**
 * crypto/verify-pool.ts: signature checks on worker threads, in packed
 * batches; a bad signature among good ones is the only one refused; a
 * thread that cannot start, dies, or stops answering hands its checks to the
 * fallback, so no check is lost or left hanging.
 */
import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import { Worker } from "node:worker_threads";
import { describe, it } from "node:test";
import * as crypto from "node:crypto";
import { THREAD_STALL_MS, VerifyPool, threadsWanted } from "../src/crypto/verify-pool.js";
import { p256SyncCheck } from "../src/crypto/p256-sync-check.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { withTimeout } from "./helpers/wait.js";
import { verifyWithAddress } from "../src/crypto/ecdsa.js";
import { signedRecords } from "./helpers/signed-records.js";

const T = 60_000;

async function checks(count: number): Promise<Array<{ h: string; a: string; s: string }>> {
  const records = await signedRecords(count, "pool/", Date.now() - 100_000);
  return records.map((r) => ({ h: r.h, a: r.a, s: r.s }));
}

/** Swaps two signatures: both well-formed, neither valid for its hash. */
function swapped(list: Array<{ h: string; a: string; s: string }>, i: number): Array<{ h: string; a: string; s: string }> {
  const out = list.map((c) => ({ ...c }));
  [out[i]!.s, out[i + 1]!.s] = [list[i + 1]!.s, list[i]!.s];
  return out;
}

/** A fallback that verifies with one call each and counts its calls. */
function countedFallback(): { verify: (h: string, a: string, s: string) => Promise<boolean>; calls: number } {
  const counted = {
    calls: 0,
    verify: (h: string, a: string, s: string) => {
      counted.calls++;
      return verifyWithAddress(h, s, a);
    },
  };
  return counted;
}

/** A class of real threads that take every message and answer none, and the promises of their exits. */
function silentWorkers(): { SilentWorker: typeof Worker; exits: Array<Promise<unknown>> } {
  const exits: Array<Promise<unknown>> = [];
  class SilentWorker extends Worker {
    constructor(_url: URL | string, options?: ConstructorParameters<typeof Worker>[1]) {
      super("require('node:worker_threads').parentPort.on('message', () => {});", { ...options, eval: true });
      exits.push(once(this, "exit"));
    }
  }
  return { SilentWorker, exits };
}

describe("signature verification threads", () => {
  it("checks a batch on real threads: only the bad signatures in the middle are refused", { timeout: T }, async () => {
    const fallback = countedFallback();
    const pool = new VerifyPool(2, { Worker }, fallback.verify);
    const list = swapped(await checks(500), 250);
    const results = await Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s)));
    assert.deepEqual(
      results.flatMap((ok, i) => (ok ? [] : [i])),
      [250, 251],
    );
    assert.equal(pool.verified, 500);
    assert.equal(fallback.calls, 0);
  });

  it("a lone check while the threads are idle takes the one-call path; asked for during a batch, it joins the threads", { timeout: T }, async () => {
    const fallback = countedFallback();
    const pool = new VerifyPool(1, { Worker }, fallback.verify);
    const list = await checks(101);
    const lone = list[100]!;
    const batch = () => Promise.all(list.slice(0, 100).map((c) => pool.verify(c.h, c.a, c.s)));
    assert.ok((await batch()).every(Boolean), "the first batch starts the thread");
    assert.equal(await pool.verify(lone.h, lone.a, lone.s), true);
    assert.deepEqual([pool.verified, fallback.calls], [100, 1], "the thread was idle: no round trip for one check");
    const inFlight = batch();
    await new Promise((resolve) => setImmediate(resolve)); // the pool's flush ran before this: the batch is on the thread
    const during = pool.verify(lone.h, lone.a, lone.s);
    assert.ok((await inFlight).every(Boolean));
    assert.equal(await during, true);
    assert.deepEqual([pool.verified, fallback.calls], [201, 1], "the thread was busy: the check went with the threads");
  });

  it("while the threads are full the main thread checks some itself: bad signatures refused wherever they land, nothing on the fallback", { timeout: T }, async () => {
    const fallback = countedFallback();
    const pool = new VerifyPool(1, { Worker }, fallback.verify, undefined, undefined, p256SyncCheck(crypto));
    // 70/71 sit in the first batch the thread cannot take: the main thread's first turn of help.
    const list = swapped(swapped(await checks(600), 70), 400);
    const results = await Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s)));
    assert.deepEqual(
      results.flatMap((ok, i) => (ok ? [] : [i])),
      [70, 71, 400, 401],
    );
    assert.equal(pool.verified, 600);
    assert.ok(pool.helped >= 16 && pool.helped < 600, `the main thread helped (${pool.helped}) and the thread worked too`);
    assert.equal(fallback.calls, 0);
  });

  it("a wedged thread holds only its share: the main thread checks the rest before the stall time, then the held ones take the fallback", { timeout: T }, async () => {
    const list = swapped(swapped(await checks(200), 20), 150);
    const clock = new ManualClock();
    const { SilentWorker, exits } = silentWorkers();
    const fallback = countedFallback();
    const pool = new VerifyPool(1, { Worker: SilentWorker }, fallback.verify, clock, THREAD_STALL_MS, p256SyncCheck(crypto));
    const settled = new Set<number>();
    const results = list.map((c, i) => pool.verify(c.h, c.a, c.s).finally(() => settled.add(i)));
    await withTimeout(
      (async () => {
        while (settled.size < 200 - 64) await new Promise((resolve) => setImmediate(resolve));
      })(),
      10_000,
      "the main thread checked what the thread did not take",
    );
    assert.equal(pool.helped, 136);
    assert.ok([...Array(64).keys()].every((i) => !settled.has(i)), "the first batch waits on the silent thread");
    clock.advance(THREAD_STALL_MS);
    const verdicts = await Promise.all(results);
    assert.deepEqual(
      verdicts.flatMap((ok, i) => (ok ? [] : [i])),
      [20, 21, 150, 151],
    );
    assert.equal(fallback.calls, 64, "only the held batch took the fallback");
    await withTimeout(exits[0]!, 10_000, "the silent thread stopped");
  });

  it("a second thread that cannot start gives every check to the fallback, those the first held too", { timeout: T }, async () => {
    let started = 0;
    const exits: Array<Promise<unknown>> = [];
    class SecondFails extends Worker {
      constructor(url: URL, options?: ConstructorParameters<typeof Worker>[1]) {
        if (++started > 1) throw new Error("no second thread");
        super(url, options);
        exits.push(once(this, "exit"));
      }
    }
    const fallback = countedFallback();
    const pool = new VerifyPool(2, { Worker: SecondFails }, fallback.verify);
    const list = swapped(await checks(300), 10);
    const verdicts = await withTimeout(Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s))), 30_000, "every check settled");
    assert.deepEqual(
      verdicts.flatMap((ok, i) => (ok ? [] : [i])),
      [10, 11],
    );
    assert.equal(fallback.calls + pool.verified, 300);
    assert.equal(started, 2);
    await withTimeout(exits[0]!, 10_000, "the first thread was stopped");
  });

  it("a thread that cannot start sends every check to the fallback", { timeout: T }, async () => {
    const list = swapped(await checks(20), 10);
    const failing = class {
      constructor() {
        throw new Error("no threads here");
      }
    };
    const pool = new VerifyPool(2, { Worker: failing as unknown as typeof Worker }, (h, a, s) => verifyWithAddress(h, s, a));
    const results = await Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s)));
    assert.deepEqual(
      results.flatMap((ok, i) => (ok ? [] : [i])),
      [10, 11],
    );
  });

  it("a thread that dies with checks outstanding hands them to the fallback", { timeout: T }, async () => {
    const list = swapped(await checks(300), 100);
    /** A thread that takes its first batch and exits without answering. */
    class DyingWorker extends EventEmitter {
      postMessage(): void {
        setImmediate(() => this.emit("exit", 1));
      }
      ref(): void {}
      unref(): void {}
      async terminate(): Promise<number> {
        return 1;
      }
    }
    const fallback = countedFallback();
    const pool = new VerifyPool(2, { Worker: DyingWorker as unknown as typeof Worker }, fallback.verify);
    const results = await Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s)));
    assert.deepEqual(
      results.flatMap((ok, i) => (ok ? [] : [i])),
      [100, 101],
    );
    assert.equal(fallback.calls, 300);
  });

  // Also with the wall clock stepped back an hour once the checks are on the thread: the stall time runs on the monotonic clock (before, an hour later).
  for (const step of [0, -3_600_000]) {
    it(`a real thread that takes checks and never answers is stopped after the stall time${step ? ", across a wall-clock step back of an hour" : ""}; its checks take the fallback`, { timeout: T }, async () => {
      const list = swapped(await checks(100), 40);
      const clock = new ManualClock();
      const { SilentWorker, exits } = silentWorkers();
      const fallback = countedFallback();
      const pool = new VerifyPool(1, { Worker: SilentWorker }, fallback.verify, clock);
      let settled = false;
      const results = Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s))).finally(() => (settled = true));
      await new Promise((resolve) => setImmediate(resolve)); // the flush ran: the checks are on the thread
      assert.equal(exits.length, 1);
      clock.stepWall(step);
      clock.advance(THREAD_STALL_MS - 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(settled, false, "before the stall time the thread is waited for");
      clock.advance(1);
      const verdicts = await withTimeout(results, 5000, "the checks to take the fallback");
      assert.deepEqual(
        verdicts.flatMap((ok, i) => (ok ? [] : [i])),
        [40, 41],
      );
      assert.equal(fallback.calls, 100, "every check of the silent thread went to the fallback");
      assert.equal(pool.verified, 0);
      await withTimeout(exits[0]!, 10_000, "the silent thread stopped");
      assert.equal(clock.pending, 0, "no watch left behind");
      assert.equal(await pool.verify(list[0]!.h, list[0]!.a, list[0]!.s), true, "later checks take the fallback");
    });
  }

  it("a thread that answers leaves no stall watch behind", { timeout: T }, async () => {
    const clock = new ManualClock();
    const pool = new VerifyPool(1, { Worker }, (h, a, s) => verifyWithAddress(h, s, a), clock);
    const list = await checks(200);
    assert.ok((await Promise.all(list.map((c) => pool.verify(c.h, c.a, c.s)))).every(Boolean));
    assert.equal(pool.verified, 200);
    assert.equal(clock.pending, 0);
  });

  it("leaves the main thread a core by default; TOOLDB_VERIFY_THREADS sets a number, one a core, or none", () => {
    assert.equal(threadsWanted(undefined, 2), 1);
    assert.equal(threadsWanted(undefined, 8), 7);
    assert.equal(threadsWanted(undefined, 1), 0, "one core: no threads, checks take libuv's pool");
    assert.equal(threadsWanted("cores", 4), 4);
    assert.equal(threadsWanted("3", 2), 3);
    assert.equal(threadsWanted("0", 8), 0);
    assert.equal(threadsWanted("many", 4), 3, "an unreadable value is the default");
  });
});
