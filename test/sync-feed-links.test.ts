/**
 * Change-feed runs (`chg1`, src/node/sync/change-sync.ts) and links to the
 * same peer address: a reconnect while the old link's run still takes its
 * last fetch in. Our checkpoint of a peer's feed is kept by its address, as
 * its sign-up retries and quota holds; a run on the new link went on beside
 * the old one's (one sync run per peer address now, peer-runs.ts, as store
 * copies already were), and the old link's run, whose fetch the intake let
 * go unstored with the dropped link, still moved the checkpoint past it: the
 * new link's run then went on from there without those records. Real
 * LevelDB stores, real loopback sockets; checked by what the records store
 * holds at each checkpoint write, never by timings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LevelStore, type ToolDb } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { linkServers, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";
import { scratchStores } from "./helpers/scratch-stores.js";

const T = 120_000;
const TOPIC = "sync-feed-links";
const T0 = Date.now() - 10_000_000;
const storeName = scratchStores("tooldb-feed-links-");

/** Every checkpoint of `source`'s feed `fresh` writes is checked against what its records store holds: the ones that claim a record it lacks. */
function checkpointsChecked(fresh: ToolDb, source: ToolDb): string[] {
  const passed: string[] = [];
  const feed = source.sync.range!.index.feed;
  const index = fresh.sync.range!.index;
  const put = index.store.put.bind(index.store);
  index.store.put = async (key: string, value: string) => {
    if (key === `c${source.nodeAddress()}`) {
      const [epoch, seq] = value.split(" ");
      const listed = epoch === feed.epoch ? (await feed.page(0, 100_000, Number(seq))).ids : [];
      for (const id of listed) {
        if ((await index.keyOf(id)) === undefined) {
          passed.push(`checkpoint ${seq} written past ${id}, not stored`);
          break;
        }
      }
    }
    return put(key, value);
  };
  return passed;
}

/** Holds `db`'s fetched frames (not a store copy's) from the first link that brings one until `release`; those of other links wait for `others`. */
function holdFetches(db: ToolDb, others: Promise<void> = Promise.resolve()) {
  const state = { link: undefined as PeerSession | undefined, frames: 0, armed: true, release: () => undefined as void };
  const held = new Promise<void>((resolve) => (state.release = resolve));
  const accept = db.acceptFrame.bind(db);
  db.acceptFrame = async (records, from, stored, spread) => {
    if (state.armed && spread !== false && (state.link ??= from) === from) {
      state.frames++;
      await held;
    } else if (state.armed && spread !== false) await others;
    return accept(records, from, stored, spread);
  };
  return state;
}

describe("change-feed runs of one peer over more than one link", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("a reconnect while the old link's fetch is still in the intake: the new link's run waits (counted as waiting, not running), and no checkpoint claims a record the dropped link let go", { timeout: T }, async () => {
    const { db: source } = await fx.server();
    await seed(source, await signedRecords(100, "base/", T0));
    const { db: fresh } = await fx.server({ storageAdapter: LevelStore, storageName: storeName() });
    const address = source.nodeAddress();
    const link = (db: ToolDb, to: string, not: readonly (PeerSession | undefined)[]) => db.network.peers.find((p) => p.address === to && !p.connection.closed && !not.includes(p));

    const passed = checkpointsChecked(fresh, source);

    const runs: RangeSyncRun[] = [];
    const order: string[] = [];
    let armed = false;
    let firstEnded!: () => void;
    const ended = new Promise<void>((resolve) => (firstEnded = resolve));
    fresh.sync.range!.on("done", (run) => {
      runs.push(run);
      if (!armed) return;
      order.push(`run ${run.complete ? "complete" : "incomplete"}`);
      firstEnded();
    });
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.some((r) => r.complete), T, "the first catch-up (a store copy, checkpoints settled)");
    const first = link(fresh, address, [])!;

    // Written at the source while the link is down: the next run brings them by the change feed.
    await seed(source, await signedRecords(50, "new/", T0 + 1000));
    // The fetches of the next link are held in the intake (a slow verification) until released; those of any later
    // link wait for that link's run to end (so a run beside it stores nothing first).
    const hold = holdFetches(fresh, ended);
    hold.armed = false;
    // The links whose runs asked the source for its changes since then, in order: the next link's, then the new one's.
    const asking: PeerSession[] = [];
    const handle = source.sync.range!.handle.bind(source.sync.range!);
    source.sync.range!.handle = (message, from) => {
      if (armed && message.type === "syncChanges" && !asking.includes(from) && asking.push(from) === 2) order.push("changes on the new link");
      return handle(message, from);
    };
    armed = hold.armed = true;
    first.connection.close(1000, "test: the link drops");
    await waitUntil(() => hold.frames >= 1, T, "the next link's change-feed fetch held in the intake");

    // That link drops too, its fetch still in the intake; the new server dials again and a run begins on the new link.
    hold.link!.connection.close(1000, "test: a reconnect");
    await waitUntil(() => link(fresh, address, [first, hold.link]) !== undefined, T, "the new link");
    await waitUntil(() => fresh.syncProgress.running + fresh.syncProgress.waiting >= 2, T, "a run on the new link while the old one's goes on");
    const gauges = { running: fresh.syncProgress.running, waiting: fresh.syncProgress.waiting };
    hold.release();
    await waitUntil(() => runs.some((r, i) => i > 0 && r.complete), T, "a complete run on the new link");
    console.log(`# ${order.join(", ")}; while the new link's run waited: ${JSON.stringify(gauges)}`);

    assert.deepEqual(passed, [], "every checkpoint written says what the records store holds");
    assert.deepEqual(gauges, { running: 1, waiting: 1 }, "the run on the new link waits, counted as waiting");
    assert.deepEqual(order.slice(0, 2), ["run incomplete", "changes on the new link"], "the new link's run began once the old link's run had ended");
    assert.equal(runs.at(-1)!.mode, "changes", "the new link's run goes by the change feeds");
    assert.equal((await contents(fresh)).size, 150, "every record of the source is here");
    await waitUntil(() => fresh.syncProgress.running === 0 && fresh.syncProgress.waiting === 0, T, "no run left");
  });

  it("a range run whose last fetch the dropped link let go settles no checkpoint of the peer, and the next link's run brings the records", { timeout: T }, async () => {
    // The next link's run asks the very ranges again at once: answered (a repeat is refused for a minute by default).
    const { db: source } = await fx.server({ rangeSync: { budget: { repeatWindowMs: 0 } } });
    const shared = await signedRecords(1, "shared/", T0);
    await seed(source, [...shared, ...(await signedRecords(100, "base/", T0))]);
    // Not empty (one record both hold): no store copy, ranges.
    const { db: fresh } = await fx.server({ storageAdapter: LevelStore, storageName: storeName() });
    await seed(fresh, shared);
    const passed = checkpointsChecked(fresh, source);
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    const hold = holdFetches(fresh);
    await linkServers(fresh, source, T);
    await waitUntil(() => hold.frames >= 1, T, "the range run's fetch held in the intake");
    hold.link!.connection.close(1000, "test: the link drops");
    await waitUntil(() => hold.link!.connection.closed, T, "the link to close");
    hold.release();
    await waitUntil(() => runs.length >= 1, T, "the first run to end");
    hold.armed = false;
    await waitUntil(() => runs.some((r) => r.complete), T, "a complete run on the next link");
    console.log(`# runs: ${runs.map((r) => `${r.mode} ${r.complete ? "complete" : `incomplete (${r.reason})`}`).join(", ")}`);

    assert.deepEqual(passed, [], "every checkpoint written says what the records store holds");
    assert.equal(runs[0]!.complete, false, "the run on the dropped link is not complete");
    assert.equal(runs[0]!.mode, "range");
    assert.equal((await contents(fresh)).size, 101, "every record of the source is here");
  });
});
