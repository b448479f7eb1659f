/**
 * The store copy (`copy1`, src/node/sync/store-copy.ts) against modified
 * peers over real loopback sockets, and what a copy does with records its
 * intake refuses: a liar paging empty pages with a cursor that moves on
 * (each page costs it, and a few that bring nothing end the copy), a peer
 * refusing the checkpoint after a complete copy (the run is not complete),
 * and sign-ups refused by a quota that refills during a copy (fetched by a
 * later run, not lost). Checked by records, runs, budgets and checkpoints,
 * never by timings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { DEFAULT_SYNC_BUDGET, LOOKUP_WORK } from "../src/node/sync/sync-budget.js";
import { signRecord } from "../src/node/record-signer.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { copyRun, onCopy } from "./helpers/copy-run.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords, testAuthor } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "sync-copy-liars";
const SMALL_FRAMES = { maxMessageBytes: 64 * 1024 };
const T0 = Date.now() - 10_000_000;

/** The source answers every copy request with an empty page whose cursor moves on: no record, ever. Returns the pages asked. */
function emptyPagesForEver(source: ToolDb): { pages: number } {
  const asked = { pages: 0 };
  onCopy(source, (message, from) => {
    asked.pages++;
    from.send({ type: "syncRecords", id: message.id, records: [], next: `z${String(asked.pages).padStart(8, "0")}` });
  });
  return asked;
}

describe("a store copy from a lying peer", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("empty pages whose cursor moves on end the copy after a few: ranges bring the records the liar holds", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    await seed(source, await signedRecords(300, "base/", T0));
    const asked = emptyPagesForEver(source);
    const { db: fresh, refused } = await fx.server(SMALL_FRAMES);
    const run = await copyRun(fresh, source);
    console.log(`# empty pages: ${asked.pages} asked, run ${run.mode} complete=${run.complete} ${run.reason ?? ""}`);
    // Before: maxRounds (1,000) pages a run, and the next run resumed at the liar's cursor.
    assert.ok(asked.pages <= 5, `${asked.pages} empty pages asked for`);
    assert.equal(run.complete, true, run.reason);
    assert.equal(run.mode, "range");
    assert.deepEqual(await contents(fresh), await contents(source));
    assert.deepEqual(refused.map((e) => e.reason), [], "an empty page is no strike (an honest one can be)");
  });

  it("pages of records the asker holds with one new record each, below the held-page size, end the copy after a few", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    const old = await signedRecords(14, "old/", T0);
    const news = await signedRecords(100, "new/", T0);
    await seed(source, [...old, ...news]);
    let pages = 0;
    onCopy(source, (message, from) => {
      // The same 14 records each page, and one new one to look like progress; the cursor always moves on.
      const page = [...old, news[pages % news.length]!];
      pages++;
      from.send({ type: "syncRecords", id: message.id, records: page, next: `z${String(pages).padStart(8, "0")}` });
    });
    const { db: fresh } = await fx.server({ ...SMALL_FRAMES, rangeSync: { maxRounds: 100 } });
    const run = await copyRun(fresh, source);
    console.log(`# padded pages: ${pages} asked, run ${run.mode} complete=${run.complete} ${run.reason ?? ""}`);
    // Before: maxRounds (100 here) pages, 14 records already here in each. Now the first page, 3 barren ones, 2 in flight.
    assert.ok(pages <= 8, `${pages} padded pages asked for`);
    assert.equal(run.complete, true, run.reason);
    assert.equal(run.mode, "range");
    assert.deepEqual(await contents(fresh), await contents(source));
  });

  it("each empty page costs the liar its dialer-side budget", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    const asked = emptyPagesForEver(source);
    // A window so long that the budget does not refill during the test: what is used is what was charged.
    const { db: fresh } = await fx.server({ ...SMALL_FRAMES, rangeSync: { budget: { windowMs: 1e12 } } });
    const run = await copyRun(fresh, source);
    assert.equal(run.complete, true, run.reason);
    assert.ok(asked.pages <= 5, `${asked.pages} empty pages asked for`);
    const session = fresh.network.peers[0]!;
    const capacity = DEFAULT_SYNC_BUDGET.scansPerItem * (0 + DEFAULT_SYNC_BUDGET.slack);
    const used = capacity - fresh.sync.range!.gate.answersRemaining(session);
    console.log(`# ${asked.pages} empty pages, ${used} of the liar's budget used (ranges: ${run.work ?? 0})`);
    assert.ok(Math.abs(used - (LOOKUP_WORK * asked.pages + (run.work ?? 0))) < 1, `${used} used for ${asked.pages} pages and ${run.work} of ranges`);
  });

  it("a peer that refuses the checkpoint after a complete copy: the run is not complete, and the next one reconciles ranges", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    await seed(source, await signedRecords(500, "base/", T0));
    const range = source.sync.range!;
    const honest = range.handle.bind(range);
    let commits = 0;
    range.handle = (message, from) => {
      if (message.type !== "syncCommit" || ++commits > 1) return honest(message, from);
      from.send({ type: "syncCommitAck", id: message.id, error: "the test refuses the first checkpoint" });
      return undefined;
    };
    const { db: fresh } = await fx.server(SMALL_FRAMES);
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.length >= 1, T, "the copy's run");
    const [copy] = runs;
    assert.equal(copy!.mode, "copy");
    assert.equal(copy!.complete, false, "its checkpoints were not written");
    assert.match(copy!.reason ?? "", /settling the checkpoints failed: peer refused the checkpoint/);
    assert.deepEqual(await contents(fresh), await contents(source), "every record copied is kept");
    assert.equal(fresh.syncProgress.runs.copy, 0);
    // An incomplete run is run again (RunSchedule): the peer holds no checkpoint of us, so not by the feeds.
    await waitUntil(() => runs.length >= 2, T, "the next run");
    assert.equal(runs[1]!.complete, true, runs[1]!.reason);
    assert.equal(runs[1]!.mode, "range");
    assert.equal(runs[1]!.fetched, 0);
  });
});

describe("records a copy's intake refuses", () => {
  const fx = attackFixture(`${TOPIC}-intake`, 30_000);

  it("sign-ups refused by a quota that refills are not lost: no checkpoint past them, and the next run fetches them", { timeout: T }, async () => {
    const WINDOW = 1000;
    const author = await testAuthor();
    const accounts = await Promise.all(Array.from({ length: 12 }, (_, i) => signRecord(author, `==acct-${i}`, { name: `acct-${i}` }, T0 + i, 0, false)));
    const { db: source } = await fx.server(SMALL_FRAMES);
    await seed(source, [...accounts, ...(await signedRecords(200, "base/", T0))]);
    const { db: fresh } = await fx.server({ ...SMALL_FRAMES, limits: { maxServerSignUpsPerIp: 5, signUpWindow: WINDOW } });
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.length >= 1, T, "the copy's run");
    assert.equal(runs[0]!.mode, "copy");
    const peer = fresh.network.peers[0]!;
    const held = (await contents(fresh)).size;
    console.log(`# sign-up quota: ${held - 200} of 12 accounts taken by the copy`);
    assert.ok(held < 212, "some sign-ups were deferred");
    assert.equal(await fresh.sync.range!.index.feed.checkpoint(peer.address), undefined, "no checkpoint past the deferred sign-ups");
    // The quota refills within its window; the next link's run is by ranges and brings the rest, a quota's worth a run.
    for (let link = 0; link < 3 && (await contents(fresh)).size < 212; link++) {
      fresh.network.disconnectFrom("127.0.0.1", portOf(source));
      await waitUntil(() => fresh.network.peers.length === 0 && source.network.peers.length === 0, T, "the link to drop");
      await new Promise((resolve) => setTimeout(resolve, WINDOW)); // the quota's window: 5 sign-ups again
      const done = runs.length;
      await linkServers(fresh, source, T);
      await waitUntil(() => runs.length > done, T, "the next run");
      assert.equal(runs.at(-1)!.mode, "range");
    }
    assert.deepEqual(await contents(fresh), await contents(source));
  });
});
