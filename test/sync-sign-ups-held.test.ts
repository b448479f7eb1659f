/**
 * The hold on range runs after sign-ups refused by a quota that refills
 * (PullHolds.rangePull, RecordTransfer.fetchQueue): until the quota could
 * take them, a range run with that peer fetches its other changes but not the
 * sign-ups the quota refused from it. Three edges of it:
 *
 * - a store copy's refused sign-ups set the hold too: the range run after a
 *   new server's copy fetched and verified every one of them again;
 * - more than 256 refused: the quota remembered the latest 256 ids a link, and
 *   the held runs fetched the rest again, each run (now: the latest 65,536
 *   of every proven server's link together, RefusedSignUps);
 * - a held run that brings the peer's other new records earns the credit
 *   they earn in any run (NEW_RECORD_CREDIT on the budget for our work on
 *   the peer's answers): the hold only leaves ids out of its fetches.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type ToolDb } from "../src/index.js";
import { NEW_RECORD_CREDIT } from "../src/node/sync/sync-budget.js";
import { closeAll } from "./helpers/nodes.js";
import { linkedPair, rangeRefresher, refresher, signUpsSent } from "./helpers/refresh-pair.js";
import { accounts, botSignUps, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
const WINDOW = 20 * 60_000;
/** 10 relayed sign-ups per 20 minutes. */
const LIMITS = { exemptIps: [], maxServerSignUpsPerIp: 10, signUpWindow: WINDOW };

/** Counts the sign-ups `db` refuses from here on by a quota (SIGN_UP_LIMIT). */
function signUpRefusals(db: ToolDb): () => number {
  let refused = 0;
  db.on("refused", (e) => void (e.code === ErrorCode.SIGN_UP_LIMIT && refused++));
  return () => refused;
}

/** How many of `records` `db` stores. */
async function stored(db: ToolDb, records: readonly { k: string }[]): Promise<number> {
  return (await Promise.all(records.map((r) => db.records.get(r.k)))).filter((r) => r !== undefined).length;
}

describe("range runs held by a sign-up quota", { timeout: 3 * T }, () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("a store copy's refused sign-ups hold the range run after it: none is fetched again before the refill, the peer's other changes are", { timeout: T }, async () => {
    const { clock, dialer: fresh, listener: source } = await linkedPair(nodes, {}, { limits: LIMITS }, {}, async (listener, at) => {
      await seed(listener, [...(await botSignUps("user-", 30, at.now() - 1000)), ...(await signedRecords(20, "h/", at.now() - 1000))]);
    });
    assert.equal(fresh.syncProgress.runs.copy, 1, "the first run copied the store");
    assert.equal(await accounts(fresh, "user-"), 10, "the copy met the quota");
    assert.equal(await fresh.records.get("h/19").then((r) => r?.k), "h/19");
    const [sent, refused] = [signUpsSent(source, fresh, "user-"), signUpRefusals(fresh)];
    const later = await signedRecords(5, "later/", clock.now());
    for (const r of later) await source.records.merge(r);
    const refresh = refresher(clock, fresh);
    const ranges = fresh.syncProgress.runs.range;
    await refresh();
    console.log(`# the range run after the copy, quota empty: sign-ups sent ${sent()}, refused ${refused()}, later changes ${await stored(fresh, later)} of 5`);
    assert.equal(fresh.syncProgress.runs.range, ranges + 1, "ranges, no checkpoint of the peer past its refused sign-ups");
    assert.equal(sent(), 0, "no sign-up the copy met refused was fetched again");
    assert.equal(refused(), 0);
    assert.equal(await stored(fresh, later), 5, "the peer's other changes came");
    for (let i = 0; i < 4 && (await accounts(fresh, "user-")) < 30; i++) await refresh(WINDOW);
    assert.equal(await accounts(fresh, "user-"), 30, "all arrived after the refills");
  });

  it("past 256 refused sign-ups, a held run fetches none of them again, and the peer's other new records earn it their credit", { timeout: T }, async () => {
    const { clock, dialer: victim, listener: honest } = await linkedPair(nodes, {}, { limits: LIMITS });
    await seed(victim, await signedRecords(20, "v/", clock.now() - 1000)); // not empty: ranges, no store copy
    await seed(honest, await botSignUps("many-", 300, clock.now() - 1000));
    const [sent, refused] = [signUpsSent(honest, victim, "many-"), signUpRefusals(victim)];
    const rangeRun = rangeRefresher(clock, victim);
    await rangeRun();
    assert.equal(await accounts(victim, "many-"), 10, "the first run met the quota");
    assert.deepEqual([sent(), refused()], [300, 290]);
    // Later changes of the honest server; what the victim's budget for our work on its answers is given back meanwhile.
    const later = await signedRecords(5, "later/", clock.now());
    for (const r of later) await honest.records.merge(r);
    let credit = 0;
    const budget = victim.sync.range!.gate.budget;
    const give = budget.credit.bind(budget);
    budget.credit = (keys, kind, amount) => {
      if (kind === "scans" && keys.some((key) => key.startsWith("dial:"))) credit += amount;
      give(keys, kind, amount);
    };
    await rangeRun();
    console.log(`# a held run after 290 refused: sign-ups sent ${sent() - 300}, refused ${refused() - 290}; later changes ${await stored(victim, later)} of 5, credit ${credit}`);
    assert.equal(sent(), 300, "no refused sign-up fetched again");
    assert.equal(refused(), 290);
    assert.equal(await stored(victim, later), 5, "the peer's other changes came");
    assert.equal(credit, 5 * NEW_RECORD_CREDIT, "each new record earned its credit in the held run");
  });
});
