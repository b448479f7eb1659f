/** Pacing of lookups and announces, driven by a manual clock (no network, no sleeping). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TimerGroup } from "../../src/base/clock.js";
import { Announcer } from "../../src/discovery/announcer.js";
import { LookupLoop, type LookupLoopConfig } from "../../src/discovery/lookup-loop.js";
import { TopicSession } from "../../src/discovery/topic-session.js";
import { ManualClock } from "../helpers/manual-clock.js";

const HASH = Buffer.alloc(20, 1);
const LOOKUP_MS = 10;

function makeLoop(clock: ManualClock, satisfied: () => boolean, overrides: Partial<LookupLoopConfig> = {}) {
  const starts: number[] = [];
  const timers = new TimerGroup(clock);
  const loop = new LookupLoop(HASH, {
    lookup: (_hash, cb) => {
      starts.push(clock.now());
      clock.setTimeout(() => cb(null, 3), LOOKUP_MS);
      return () => undefined;
    },
    timers,
    clock,
    random: () => 0.5, // jitter factor exactly 1
    fastInterval: 1000,
    warmupInterval: 1000, // no warm-up: the warm-up has its own test
    slowInterval: 30_000,
    jitter: 0.1,
    timeout: 5000,
    isSatisfied: satisfied,
    beforeLookup: () => undefined,
    onResult: () => undefined,
    ...overrides,
  });
  return { loop, starts, timers };
}

describe("LookupLoop pacing", () => {
  it("looks up at once, then every fastInterval from each start while unsatisfied", () => {
    const clock = new ManualClock();
    const { loop, starts } = makeLoop(clock, () => false);
    loop.start();
    clock.advance(3100);
    assert.deepEqual(starts, [0, 1000, 2000, 3000]);
    loop.stop();
  });

  it("warms up after start and refresh: warmupInterval, doubling up to fastInterval", () => {
    const clock = new ManualClock();
    const { loop, starts } = makeLoop(clock, () => false, { warmupInterval: 50 });
    loop.start();
    clock.advance(2900);
    assert.deepEqual(starts, [0, 50, 150, 350, 750, 1550, 2550]);
    loop.refresh(); // rate-limited to one start per fastInterval, then warms up again
    clock.advance(3600 - 2900);
    assert.deepEqual(starts.slice(7), [3550, 3600]);
    clock.advance(200);
    assert.deepEqual(starts.slice(9), [3700]);
    loop.stop();
  });

  it("slows down once satisfied and speeds up when hurried", () => {
    const clock = new ManualClock();
    let satisfied = false;
    const { loop, starts } = makeLoop(clock, () => satisfied);
    loop.start();
    clock.advance(1500); // lookups at 0 and 1000
    satisfied = true;
    clock.advance(40_000);
    // after the lookup started at 2000 completes the pace is slow: next at 2000 + 30000
    assert.deepEqual(starts, [0, 1000, 2000, 32_000]);
    satisfied = false;
    loop.hurry(); // at 41500: a slow wait is brought forward to the fast pace
    clock.advance(1000);
    assert.deepEqual(starts.slice(4), [42_500]);
    loop.stop();
  });

  it("refresh() looks up immediately, rate-limited to one start per fastInterval", () => {
    const clock = new ManualClock();
    const { loop, starts } = makeLoop(clock, () => true);
    loop.start(); // lookup at 0, then slow
    clock.advance(5000);
    for (let i = 0; i < 50; i++) loop.refresh();
    clock.advance(0);
    assert.deepEqual(starts, [0, 5000]);
    // spamming refresh during and right after the lookup yields one more, a fastInterval later
    for (let i = 0; i < 50; i++) loop.refresh();
    clock.advance(20);
    for (let i = 0; i < 50; i++) loop.refresh();
    clock.advance(2000);
    assert.deepEqual(starts, [0, 5000, 6000]);
    loop.stop();
  });

  it("bounds a lookup that never calls back and keeps going", () => {
    const clock = new ManualClock();
    const starts: number[] = [];
    let aborted = 0;
    const errors: string[] = [];
    const { loop } = makeLoop(clock, () => false, {
      lookup: () => {
        starts.push(clock.now());
        return () => aborted++;
      },
      onResult: (err) => errors.push(err?.message ?? "ok"),
    });
    loop.start();
    clock.advance(12_500);
    assert.deepEqual(starts, [0, 5000, 10_000]);
    assert.equal(aborted, 2);
    assert.deepEqual(errors, ["lookup timed out", "lookup timed out"]);
    loop.stop();
  });

  it("keeps its pace across a wall-clock step back of an hour (periods run on the monotonic clock)", () => {
    const clock = new ManualClock(Date.now());
    const { loop, starts } = makeLoop(clock, () => false);
    loop.start(); // a lookup at once; it calls back 10 ms later, after the step
    clock.stepWall(-3_600_000);
    clock.advance(3100);
    assert.equal(starts.length, 4, "a lookup every fastInterval (before: the next one an hour after the first)");
    loop.stop();
  });

  it("stop() leaves no timer behind", () => {
    const clock = new ManualClock();
    const { loop, timers } = makeLoop(clock, () => false);
    loop.start();
    clock.advance(1500);
    loop.stop();
    assert.equal(timers.size, 0);
    clock.advance(10_000);
  });
});

describe("Announcer pacing", () => {
  it("retries failures with backoff, then re-announces every interval", () => {
    const clock = new ManualClock();
    const timers = new TimerGroup(clock);
    const calls: number[] = [];
    let failures = 3;
    const results: string[] = [];
    const a = new Announcer(HASH, 9000, {
      announce: (hash, port, cb) => {
        assert.equal(port, 9000);
        assert.equal(hash, HASH);
        calls.push(clock.now());
        clock.setTimeout(() => cb(failures-- > 0 ? new Error("No nodes to query") : null, 4), 5);
      },
      timers,
      random: () => 0, // no backoff jitter; jitter factor 1 - jitter for the interval
      interval: 60_000,
      jitter: 0,
      retryInitial: 1000,
      timeout: 5000,
      onResult: (err, nodes) => results.push(err ? "err" : `ok:${nodes}`),
    });
    a.start();
    clock.advance(200_000);
    // failures back off 1000, 2000, 4000 after each completion; then every 60 s
    assert.deepEqual(calls, [0, 1005, 3010, 7015, 67_020, 127_025, 187_030]);
    assert.deepEqual(results.slice(0, 5), ["err", "err", "err", "ok:4", "ok:4"]);
    a.stop();
    assert.equal(timers.size, 0);
  });
});

describe("TopicSession pacing", () => {
  function makeSession(clock: ManualClock) {
    const timers = new TimerGroup(clock);
    const starts: number[] = [];
    const common = { timers, clock, random: () => 0.5, jitter: 0.1 };
    const session = new TopicSession("topic", HASH, 1, {
      lookup: {
        ...common,
        lookup: (_hash, cb) => {
          starts.push(clock.now());
          clock.setTimeout(() => cb(null, 3), LOOKUP_MS);
          return () => undefined;
        },
        fastInterval: 1000,
        warmupInterval: 1000,
        slowInterval: 30_000,
        timeout: 5000,
      },
      announce: { ...common, announce: () => undefined, interval: 60_000, retryInitial: 1000, timeout: 5000 },
      peerTtl: 100_000,
      maxPeers: 10,
      onLookup: () => undefined,
      onAnnounce: () => undefined,
    });
    return { session, starts, timers };
  }

  it("goes slow once `want` peers are known, and refresh() stays fast until a new peer", () => {
    const clock = new ManualClock();
    const { session, starts, timers } = makeSession(clock);
    session.start();
    clock.advance(5); // lookup at 0 in flight
    assert.equal(session.see({ host: "10.0.0.1", port: 1 }, clock.now(), false), true);
    assert.equal(session.see({ host: "10.0.0.1", port: 1 }, clock.now(), false), false);
    clock.advance(40_000);
    assert.deepEqual(starts, [0, 30_000]); // satisfied: slow pace

    session.refresh(); // at 40005: immediate, then fast until something new turns up
    clock.advance(2500);
    assert.deepEqual(starts.slice(2), [40_005, 41_005, 42_005]);
    session.see({ host: "10.0.0.1", port: 1 }, clock.now(), false); // known: still boosted
    clock.advance(1000);
    assert.deepEqual(starts.slice(5), [43_005]);
    session.see({ host: "10.0.0.2", port: 2 }, clock.now(), false); // new: satisfied again
    clock.advance(20_000);
    // the fast wait already scheduled runs out once, then the pace is slow
    assert.deepEqual(starts.slice(6), [44_005]);

    // forgetting the peers drops below `want`: the slow wait (to 74005) is brought forward
    session.forget("10.0.0.1", 1);
    session.forget("10.0.0.2", 2);
    clock.advance(1000);
    assert.deepEqual(starts.slice(7), [64_505]);
    session.stop(new Error("stopped"));
    assert.equal(timers.size, 0);
  });

  it("our own announce never satisfies `want`", () => {
    const clock = new ManualClock();
    const { session, starts } = makeSession(clock);
    session.start();
    session.see({ host: "127.0.0.2", port: 9000 }, 0, true);
    clock.advance(3100);
    assert.equal(starts.length, 4); // still fast
    assert.deepEqual(session.peers.list(), []);
    session.stop(new Error("stopped"));
  });
});
