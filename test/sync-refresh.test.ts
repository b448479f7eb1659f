/**
 * Periodic refresh runs on a stable server link (run-schedule.ts): a run
 * that completed is followed by another `rangeSync.refreshMs` later
 * (±20 %), so what the relay lost while the link stayed up arrives without
 * the link reopening; an idle refresh costs only the change-feed request and
 * the commit; `refreshMs: 0` turns it off, and no refresh timer outlives its
 * link or the node. Both servers run on one manual clock: a refresh comes
 * only when the test moves it (the heartbeat is pushed out of the way).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { TimerGroup } from "../src/base/clock.js";
import { closeAll, linkServers, waitUntil } from "./helpers/nodes.js";
import { LATEST, REFRESH_MS, countSync, linkedPair, sessionTo } from "./helpers/refresh-pair.js";
import { seed, signedRecords } from "./helpers/signed-records.js";

const T = 30_000;

/** The timers of a node's server sync (retries and refreshes of its runs). */
const syncTimers = (db: ToolDb): TimerGroup => (db.sync as unknown as { timers: TimerGroup }).timers;

describe("periodic refresh of server links", { timeout: 4 * T }, () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("a record stored without being relayed reaches the linked server by the next refresh, on the same link", { timeout: T }, async () => {
    const { clock, dialer, listener } = await linkedPair(nodes);
    const links = [sessionTo(dialer, listener), sessionTo(listener, dialer)];
    // Lost relays: each server stores a record straight into its store; neither is relayed.
    const t0 = clock.now();
    const [onListener] = await signedRecords(1, "lost-relay-listener-", t0);
    const [onDialer] = await signedRecords(1, "lost-relay-dialer-", t0);
    await seed(listener, [onListener!]);
    await seed(dialer, [onDialer!]);
    const runs = dialer.syncProgress.completed;
    clock.advance(REFRESH_MS - 1);
    assert.equal(dialer.syncProgress.running, 0, "no refresh before its time");
    clock.advance(1);
    await waitUntil(async () => (await dialer.records.get(onListener!.k))?.h === onListener!.h, 10_000, "the listener's record on the dialer");
    await waitUntil(async () => (await listener.records.get(onDialer!.k))?.h === onDialer!.h, 10_000, "the dialer's record on the listener");
    await waitUntil(() => dialer.syncProgress.completed === runs + 1 && dialer.syncProgress.running === 0, 10_000, "the refresh to end");
    assert.equal(dialer.syncProgress.runs.changes >= 1, true, "the refresh went by the change feeds");
    assert.equal(dialer.syncProgress.recordsFetched >= 1 && dialer.syncProgress.recordsPushed >= 1, true);
    assert.deepEqual([sessionTo(dialer, listener), sessionTo(listener, dialer)], links, "the same link carried them");
    assert.equal(links[0]!.connection.closed, false);
  });

  it("an idle refresh costs the change-feed request and the commit: four small frames, no ranges", { timeout: T }, async () => {
    const { clock, dialer, listener } = await linkedPair(nodes);
    const out = countSync(sessionTo(dialer, listener));
    const back = countSync(sessionTo(listener, dialer));
    const { runs } = dialer.syncProgress;
    const before = { ...runs };
    for (let refresh = 1; refresh <= 2; refresh++) {
      clock.advance(LATEST);
      await waitUntil(() => dialer.syncProgress.completed === 1 + refresh && dialer.syncProgress.running === 0, 10_000, `idle refresh ${refresh}`);
    }
    assert.deepEqual(runs, { ...before, changes: before.changes + 2 }, "two runs, by the change feeds");
    assert.deepEqual(out.frames, ["syncChanges", "syncCommit", "syncChanges", "syncCommit"]);
    assert.deepEqual(back.frames, ["syncChangesAck", "syncCommitAck", "syncChangesAck", "syncCommitAck"]);
    const bytes = out.bytes() + back.bytes();
    assert.ok(bytes <= 2 * 400, `two idle refreshes sent ${bytes} characters`); // 354 each on loopback
    assert.equal(dialer.syncProgress.recordsFetched + dialer.syncProgress.recordsPushed, 0);
  });

  it("an honest peer's refreshes for 25 minutes are all answered: the responder's budget barely moves", { timeout: T }, async () => {
    const { clock, dialer, listener } = await linkedPair(nodes);
    const refused: string[] = [];
    listener.on("refused", (e) => refused.push(e.reason));
    const gate = listener.sync.range!.gate;
    const session = sessionTo(listener, dialer);
    const full = { rounds: gate.remaining(session, "rounds"), scans: gate.remaining(session, "scans") };
    for (let refresh = 1; refresh <= 25; refresh++) {
      clock.advance(LATEST);
      await waitUntil(() => dialer.syncProgress.completed === 1 + refresh && dialer.syncProgress.running === 0, 10_000, `refresh ${refresh}`);
    }
    assert.equal(dialer.syncProgress.runs.incomplete, 0);
    assert.deepEqual(refused, []);
    // 2 rounds and 2 items of work a refresh, refilled as time goes on: the buckets stay about full.
    assert.ok(gate.remaining(session, "rounds") >= full.rounds - 2, `rounds left ${gate.remaining(session, "rounds")} of ${full.rounds}`);
    assert.ok(gate.remaining(session, "scans") >= full.scans - 2);
  });

  it("a refresh after relayed writes lists them once and offers none of them back", { timeout: T }, async () => {
    const { clock, dialer, listener } = await linkedPair(nodes);
    // Writes on both servers, each relayed to the other: both feeds list all of them.
    const keys = Array.from({ length: 20 }, (_, i) => `relayed-${i}`);
    await Promise.all(keys.map((key, i) => (i % 2 ? dialer : listener).putData(key, i)));
    const holdsAll = (db: ToolDb) => async () => (await Promise.all(keys.map((k) => db.records.get(k)))).every((r) => r !== undefined);
    await waitUntil(holdsAll(dialer), 10_000, "the relayed writes on the dialer");
    await waitUntil(holdsAll(listener), 10_000, "the relayed writes on the listener");
    const out = countSync(sessionTo(dialer, listener));
    const back = countSync(sessionTo(listener, dialer));
    clock.advance(LATEST);
    await waitUntil(() => dialer.syncProgress.completed === 2 && dialer.syncProgress.running === 0, 10_000, "the refresh");
    // The listener's feed lists the 20 (its own 10 and the 10 relayed to it); the dialer's 20 are not offered back.
    assert.deepEqual(out.frames, ["syncChanges", "syncCommit"]);
    assert.deepEqual(back.frames, ["syncChangesAck", "syncCommitAck"]);
    assert.equal(dialer.syncProgress.recordsFetched + dialer.syncProgress.recordsPushed, 0);
  });

  it("refreshMs: 0 turns refreshes off; no refresh timer outlives its link or the node", { timeout: T }, async () => {
    const off = await linkedPair(nodes, { rangeSync: { refreshMs: 0 } });
    assert.equal(syncTimers(off.dialer).size, 0, "no refresh waits");
    off.clock.advance(10 * LATEST);
    assert.equal(off.dialer.syncProgress.running + off.dialer.syncProgress.completed, 1, "no run after the first");

    const on = await linkedPair(nodes);
    assert.equal(syncTimers(on.dialer).size, 1, "the next refresh waits");
    assert.equal(syncTimers(on.listener).size, 0, "the listening side does not run");
    // The link closes: its refresh timer goes with it.
    sessionTo(on.dialer, on.listener).connection.close(1000, "test");
    await waitUntil(() => on.dialer.network.peers.length === 0, 5000, "the link to close");
    assert.equal(syncTimers(on.dialer).size, 0, "no refresh timer for a closed link");

    // Linked again: a refresh waits, and closing the node clears it.
    await linkServers(on.dialer, on.listener);
    await waitUntil(() => on.dialer.syncProgress.completed >= 2 && on.dialer.syncProgress.running === 0, 10_000, "the run on the new link");
    assert.equal(syncTimers(on.dialer).size, 1);
    await on.dialer.close();
    assert.equal(syncTimers(on.dialer).size, 0, "no timer after close");
  });
});
