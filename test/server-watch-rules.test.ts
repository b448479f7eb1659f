/**
 * The server watch's rules on a manual clock: when an idle link is probed
 * (and how often at most), when a silent one is dropped, and when a drop is
 * forgiven (and that a server alternating good and bad cannot earn it
 * cheaply). The real-socket tests are unresponsive-recovery and idle-probe.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServerWatch } from "../src/node/server-watch.js";
import { PendingRequests } from "../src/node/pending-requests.js";
import { PROBE_FUNCTION } from "../src/node/server-probe.js";
import { MIN_GOOD_ANSWERS } from "../src/node/server-standing.js";
import { CandidatePool, Tier } from "../src/peering/candidate-pool.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RefusalEvent } from "../src/network/network-host.js";
import { CloseCode } from "../src/network/connection.js";
import { createLogger } from "../src/base/logger.js";
import { ManualClock } from "./helpers/manual-clock.js";

const TIMEOUT = 1000;
const PROBE = 4000;
const RECOVER = 10_000;

interface Fake {
  session: PeerSession;
  sent: Array<{ type: string; function?: string }>;
  closedWith(): number | undefined;
}

function server(address: string, sendOk = true): Fake {
  const sent: Fake["sent"] = [];
  let code: number | undefined;
  const connection = {
    get closed() {
      return code !== undefined;
    },
    close(c: number) {
      code = c;
    },
  };
  const session = { isServer: true, provenServer: true, connection, clientId: address.slice(-20), address, host: "127.0.0.1", port: 4000, send: (m: { type: string }) => (sent.push(m), sendOk) };
  return { session: session as unknown as PeerSession, sent, closedWith: () => code };
}

function watch(clock: ManualClock, opts: { probe?: number; recover?: number; waitsFor?: (id: string) => boolean } = {}) {
  const refusals: RefusalEvent[] = [];
  const recovered = [] as Array<{ address: string; drops: number; at: number }>;
  const host = { log: createLogger("test:server-watch"), refused: (e: RefusalEvent) => refusals.push(e), recovered: (s: PeerSession, drops: number) => recovered.push({ address: s.address, drops, at: clock.now() }), waitsFor: opts.waitsFor };
  const w = new ServerWatch(host, { timeoutMs: TIMEOUT, enabled: true, probeIntervalMs: opts.probe ?? PROBE, recoverAfterMs: opts.recover ?? RECOVER }, clock);
  return { w, refusals, recovered };
}

/** Answers every probe `s` got at once, for `ms`, in steps of `step`. */
function answering(clock: ManualClock, w: ServerWatch, s: Fake, ms: number, step = 50): void {
  let seen = s.sent.length;
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    if (s.sent.length > seen) {
      seen = s.sent.length;
      w.answered(s.session, "request");
    }
  }
}

/** Drops `address` once through the watch (a link that leaves two queries unanswered). */
function dropOnce(clock: ManualClock, w: ServerWatch, address: string): void {
  const s = server(address);
  w.linked(s.session);
  w.asked(s.session, "request");
  w.asked(s.session, "request");
  clock.advance(TIMEOUT + TIMEOUT / 2);
  assert.equal(s.closedWith(), CloseCode.UNRESPONSIVE);
}

describe("server watch rules (manual clock)", { timeout: 10_000 }, () => {
  it("an idle link is probed after the interval, at most once per interval while it answers", () => {
    const clock = new ManualClock();
    const { w, refusals } = watch(clock);
    const s = server("answering-server-address-aaaaaaaaaaaaa");
    w.linked(s.session);
    clock.advance(PROBE - 1);
    assert.equal(s.sent.length, 0, "not probed before the interval");
    clock.advance(TIMEOUT / 4);
    assert.equal(s.sent.length, 1, "probed once idle for the interval");
    assert.equal(s.sent[0]!.type, "function");
    assert.equal(s.sent[0]!.function, PROBE_FUNCTION);
    answering(clock, w, s, 20 * PROBE);
    // One per interval (plus the tick's lateness): at most 20 + 1 in 20 intervals.
    assert.ok(s.sent.length >= 16 && s.sent.length <= 21, `${s.sent.length} probes in 20 intervals`);
    assert.equal(s.closedWith(), undefined);
    assert.deepEqual(refusals, []);
    w.close();
  });

  it("a link the client keeps asking (and that answers) is not probed; one with puts waiting is not either", () => {
    const clock = new ManualClock();
    const { w } = watch(clock);
    const busy = server("busy-server-address-bbbbbbbbbbbbbbbbbbbb");
    const writing = server("writing-server-address-cccccccccccccccc");
    w.linked(busy.session);
    w.linked(writing.session);
    w.asked(writing.session, "put");
    for (let t = 0; t < 5 * PROBE; t += PROBE / 2) {
      w.asked(busy.session, "request");
      clock.advance(10);
      w.answered(busy.session, "request");
      clock.advance(PROBE / 2 - 10);
    }
    assert.equal(busy.sent.length, 0);
    assert.equal(writing.sent.length, 0);
    w.close();
  });

  it("a silent idle link is probed twice and dropped within interval + bound", () => {
    const clock = new ManualClock();
    const { w, refusals } = watch(clock);
    const s = server("silent-server-address-dddddddddddddddddd");
    w.linked(s.session);
    let t = 0;
    while (s.closedWith() === undefined && t < PROBE + 3 * TIMEOUT) {
      clock.advance(10);
      t += 10;
    }
    assert.equal(s.closedWith(), CloseCode.UNRESPONSIVE);
    assert.equal(s.sent.length, 2, "a second probe before the drop");
    // First probe by PROBE + tick; drop by the first probe + TIMEOUT + tick.
    assert.ok(t <= PROBE + TIMEOUT + 2 * (TIMEOUT / 4), `dropped after ${t} ms`);
    assert.equal(refusals.length, 1);
    assert.match(refusals[0]!.reason, /2 requests unanswered/);
    w.close();
  });

  it("a wall-clock step forward of an hour drops no server: its silence is timed on the monotonic clock", () => {
    const clock = new ManualClock(Date.now());
    const { w, refusals } = watch(clock);
    const s = server("stepped-server-address-eeeeeeeeeeeeeeeeee");
    w.linked(s.session);
    for (let t = 0; s.sent.length < 2 && t < PROBE + 2 * TIMEOUT; t += 10) clock.advance(10);
    assert.equal(s.sent.length, 2, "two probes waiting, neither yet TIMEOUT old");
    clock.stepWall(3_600_000);
    clock.advance(TIMEOUT / 4);
    assert.equal(s.closedWith(), undefined, "not dropped (before: 'unanswered for 3600000 ms' at the next tick)");
    assert.equal(refusals.length, 0);
    w.close();
  });

  it("a query left unanswered alone gets a probe, so it is judged", () => {
    const clock = new ManualClock();
    const { w } = watch(clock, { probe: 60_000 });
    const s = server("one-query-server-eeeeeeeeeeeeeeeeeeeeeee");
    w.linked(s.session);
    w.asked(s.session, "request");
    clock.advance(TIMEOUT / 2 + TIMEOUT / 4);
    assert.equal(s.sent.length, 1, "one probe half the bound after the query");
    clock.advance(TIMEOUT);
    assert.equal(s.closedWith(), CloseCode.UNRESPONSIVE);
    w.close();
  });

  it("a queryAck or functionReturn answers only under the id of a request still waiting on that link", () => {
    const clock = new ManualClock();
    const { w } = watch(clock, { probe: 0 });
    const s = server("forging-server-address-aaaaaaaaaaaaaaa");
    const other = server("other-server-address-bbbbbbbbbbbbbbbbb");
    w.linked(s.session);
    w.linked(other.session);
    w.asked(s.session, "request", "q1");
    w.asked(s.session, "request", "q2");
    w.asked(other.session, "request", "o1");
    w.asked(other.session, "request", "o2");
    clock.advance(TIMEOUT / 2);
    w.answered(s.session, "request", "made-up");
    w.answered(s.session, "request", "o1"); // another link's id
    assert.equal(w.pending().filter((p) => p.peer === s.session.clientId).length, 1, "still waiting");
    w.answered(s.session, "request", "q2");
    assert.equal(w.pending().filter((p) => p.peer === s.session.clientId).length, 0, "its own id ends the wait");
    clock.advance(TIMEOUT);
    assert.equal(s.closedWith(), undefined);
    // Without a pending-request table to ask, only the newest 64 ids are remembered.
    for (let i = 0; i < 65; i++) w.asked(s.session, "request", `many-${i}`);
    w.answered(s.session, "request", "many-0");
    assert.equal(w.pending().filter((p) => p.peer === s.session.clientId).length, 1);
    w.answered(s.session, "request", "many-1");
    assert.equal(w.pending().filter((p) => p.peer === s.session.clientId).length, 0);
    clock.advance(TIMEOUT * 2);
    assert.equal(s.closedWith(), undefined);
    assert.equal(other.closedWith(), CloseCode.UNRESPONSIVE, "the other link's two requests were answered only on the wrong link");
  });

  it("with the client's pending-request table: a busy server answering the oldest of 300 queries outstanding is heard; answers under ids of its own are not", () => {
    const clock = new ManualClock();
    const requests = new PendingRequests<unknown>(1000, clock);
    const { w } = watch(clock, { probe: 0, waitsFor: (id) => requests.has(id) });
    const busy = server("busy-honest-server-address-aaaaaaaaaa");
    const forging = server("forging-server-address-bbbbbbbbbbbbbbb");
    w.linked(busy.session);
    w.linked(forging.session);
    const ask = (s: Fake, id: string) => {
      requests.add(id, TIMEOUT * 10, () => true, () => undefined);
      w.asked(s.session, "request", id);
    };
    for (let i = 0; i < 100; i++) ask(busy, `q-${i}`);
    // A request that ended (answered and done, or timed out) is forgotten once the list grows: its id no longer counts.
    requests.remove("q-1");
    for (let i = 100; i < 300; i++) ask(busy, `q-${i}`);
    for (let i = 0; i < 300; i++) ask(forging, `f-${i}`);
    clock.advance(TIMEOUT - 10);
    w.answered(busy.session, "request", "q-1");
    for (let i = 0; i < 50; i++) w.answered(forging.session, "request", `forged-${i}`);
    w.answered(forging.session, "request", "q-0"); // the other link's id
    assert.deepEqual(w.pending().map((p) => p.peer).sort(), [busy.session.clientId, forging.session.clientId].sort(), "nothing answered yet");
    // The oldest query still pending, answered just before the bound, ends the busy server's wait.
    w.answered(busy.session, "request", "q-0");
    assert.deepEqual(w.pending().map((p) => p.peer), [forging.session.clientId]);
    clock.advance(TIMEOUT);
    assert.equal(busy.closedWith(), undefined, "the busy honest server is kept");
    assert.equal(forging.closedWith(), CloseCode.UNRESPONSIVE, "the server answering under its own ids is dropped");
    w.close();
  });

  it("probes off: an idle link is never probed (as before)", () => {
    const clock = new ManualClock();
    const { w } = watch(clock, { probe: 0 });
    const s = server("unprobed-server-ffffffffffffffffffffffff");
    w.linked(s.session);
    clock.advance(10 * PROBE);
    assert.equal(s.sent.length, 0);
    assert.equal(clock.pending, 0, "no timer runs for an idle link");
    w.close();
  });

  it("a drop is forgiven after a good spell: its length and 3 answers, once per spell", () => {
    const clock = new ManualClock();
    const { w, recovered } = watch(clock, { probe: TIMEOUT });
    const address = "flaky-server-address-gggggggggggggggggg";
    dropOnce(clock, w, address);
    assert.equal(w.dropsOf(address), 1);
    const s = server(address);
    w.linked(s.session);
    const start = clock.now();
    answering(clock, w, s, RECOVER - 100);
    assert.equal(recovered.length, 0, "not before the spell's length");
    answering(clock, w, s, 2 * PROBE);
    assert.equal(recovered.length, 1);
    assert.equal(recovered[0]!.drops, 0);
    assert.ok(recovered[0]!.at - start >= RECOVER);
    assert.equal(w.dropsOf(address), 0);
    answering(clock, w, s, 3 * RECOVER);
    assert.equal(recovered.length, 1, "nothing more to forgive");
    w.close();
  });

  it("too few answers in the spell, or something long unanswered, forgive nothing", () => {
    const clock = new ManualClock();
    const { w, recovered } = watch(clock, { probe: 0 });
    const address = "quiet-server-address-hhhhhhhhhhhhhhhhhh";
    dropOnce(clock, w, address);
    const s = server(address);
    w.linked(s.session);
    for (let i = 0; i < MIN_GOOD_ANSWERS - 1; i++) {
      w.asked(s.session, "request");
      w.answered(s.session, "request");
    }
    clock.advance(RECOVER);
    assert.equal(recovered.length, 0, `${MIN_GOOD_ANSWERS - 1} answers`);
    w.asked(s.session, "put");
    clock.advance(TIMEOUT / 2);
    w.asked(s.session, "request");
    w.answered(s.session, "request");
    assert.equal(recovered.length, 0, "a put long unanswered");
    w.answered(s.session, "put");
    assert.equal(recovered.length, 1, "forgiven once the put is answered");
    w.close();
  });

  it("a server alternating good and bad earns back at most one drop per spell of good service", () => {
    const clock = new ManualClock();
    const { w, recovered } = watch(clock);
    const address = "alternating-server-iiiiiiiiiiiiiiiiiiii";
    dropOnce(clock, w, address);
    // Good for most of a spell, then bad again: nothing forgiven, a second drop.
    const first = server(address);
    w.linked(first.session);
    answering(clock, w, first, RECOVER - 2 * TIMEOUT);
    first.session.connection.close(CloseCode.NORMAL, "test");
    w.forget(first.session);
    dropOnce(clock, w, address);
    assert.equal(w.dropsOf(address), 2);
    assert.equal(recovered.length, 0);
    // Good for one spell: one drop back, not both.
    const second = server(address);
    w.linked(second.session);
    answering(clock, w, second, RECOVER + PROBE + 100);
    assert.deepEqual(recovered.map((r) => r.drops), [1]);
    // The next spell on the same link forgives the other.
    answering(clock, w, second, RECOVER + PROBE);
    assert.deepEqual(recovered.map((r) => r.drops), [1, 0]);
    w.close();
  });

  it("a candidate forgiven its drop ranks with the others again", () => {
    const clock = new ManualClock();
    const pool = new CandidatePool({ capacity: 10, penaltyMs: 1000, maxPenaltyMs: 8000, random: () => 0, now: () => clock.now() });
    pool.offer({ host: "10.0.0.1", port: 1 }, Tier.Verified);
    pool.offer({ host: "10.0.1.1", port: 1 }, Tier.Verified);
    pool.penaliseUnresponsive("10.0.0.1", 1);
    clock.advance(10_000);
    assert.equal(pool.pick(() => true)?.host, "10.0.1.1", "the dropped one last");
    pool.forgiveUnresponsive("10.0.0.1", 1);
    assert.equal(pool.get("10.0.0.1", 1)?.silence, undefined);
    assert.equal(pool.pick(() => true)?.host, "10.0.0.1", "equal again (random 0 picks the first network)");
  });
});
