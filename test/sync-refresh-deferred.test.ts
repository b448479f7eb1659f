/**
 * Sign-ups a server relays beyond our sign-up quota, on a stable link we
 * dialed: our checkpoint of its change feed stays before them so that a
 * later run fetches them again. Every periodic refresh (`rangeSync.refreshMs`)
 * listed that page again and fetched the refused sign-ups again (their
 * records read and sent, their signatures checked here), to refuse them
 * again, until the quota refilled. Now the feed is not pulled again from
 * that place until the quota can take what it refused: the refreshes
 * between cost the change-feed request and the commit, and the sign-ups
 * are fetched once the quota allows.
 *
 * Range runs (no valid checkpoint, e.g. forgotten) fetched and verified
 * every refused sign-up again at each run, the quota still empty. They now
 * share the feed's hold (PullHolds.rangePull): until the refill a range run
 * fetches none of the sign-ups refused from that peer (the rest it fetches,
 * and it pushes); then it fetches them all (test/sync-sign-ups-held.test.ts:
 * after a store copy, and past 256 refused).
 *
 * While that hold was on, the peer's later ordinary changes waited for the
 * refill too when they came by refresh. Now the refused sign-ups' ids wait
 * in a bounded list of retries kept with the checkpoint (sign-up-retries.ts),
 * the checkpoint moves on, and the retries are fetched once the quota refills.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb } from "../src/index.js";
import { closeAll } from "./helpers/nodes.js";
import { LATEST, countSync, linkedPair, rangeRefresher, refresher, sessionTo, signUpsSent } from "./helpers/refresh-pair.js";
import { accounts, botSignUps, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
const WINDOW = 20 * 60_000;
/** 10 relayed sign-ups per 20 minutes: 2 or 3 refill across four refreshes, 10 in the window. */
const LIMITS = { exemptIps: [], maxServerSignUpsPerIp: 10, signUpWindow: WINDOW };

describe("refreshes after sign-ups refused by a quota", { timeout: 2 * T }, () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("refreshes before the quota refills neither list nor fetch the refused sign-ups again; once it refills they are fetched", { timeout: T }, async () => {
    const { clock, dialer, listener } = await linkedPair(nodes, {}, { limits: LIMITS });
    const refused: RefusalEvent[] = [];
    dialer.on("refused", (e) => refused.push(e));
    const signUpRefusals = () => refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length;
    // Sign-ups the listener's clients made, stored there but not relayed (a lost relay): the next refresh brings them.
    const relayed = await botSignUps("user-", 30, clock.now());
    for (const r of relayed) await listener.records.merge(r);
    const refresh = refresher(clock, dialer);
    await refresh();
    assert.equal(await accounts(dialer, "user-"), 10, "the first refresh met the quota");
    const refusedFirst = signUpRefusals();
    assert.equal(refusedFirst, 20);

    // Four refreshes while the quota is empty.
    const out = countSync(sessionTo(dialer, listener));
    const back = countSync(sessionTo(listener, dialer));
    const fetchedBefore = dialer.syncProgress.recordsFetched;
    for (let i = 0; i < 4; i++) await refresh();
    console.log(`# 4 refreshes, quota empty: sent ${out.frames.join(",")}; answers ${back.bytes()} characters; refused again ${signUpRefusals() - refusedFirst}`);
    assert.equal(out.frames.filter((f) => f === "syncFetch").length, 0, "no fetch of the refused sign-ups");
    assert.equal(signUpRefusals(), refusedFirst, "nothing refused again");
    assert.equal(dialer.syncProgress.recordsFetched, fetchedBefore);
    assert.ok(back.bytes() <= 4 * 400, `the listener's answers took ${back.bytes()} characters: the page was listed again`);
    assert.equal(dialer.syncProgress.runs.incomplete, 0);

    // The quota refills: the next refreshes fetch them, 10 a window.
    await refresh(WINDOW);
    assert.equal(await accounts(dialer, "user-"), 20);
    await refresh(WINDOW);
    assert.equal(await accounts(dialer, "user-"), 30, "all stored once the quota allowed");
    await refresh();
    assert.equal(dialer.syncProgress.runs.incomplete, 0);
  });

  it("a range run before the refill fetches no refused sign-up again, and the peer's other changes still; after it, all arrive", { timeout: T }, async () => {
    const { clock, dialer: victim, listener: honest } = await linkedPair(nodes, {}, { limits: LIMITS });
    const refused: RefusalEvent[] = [];
    victim.on("refused", (e) => refused.push(e));
    const limitRefusals = () => refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length;
    // Sign-up records the honest server sends the victim (fetch answers), counted on its side of the link.
    const signUps = signUpsSent(honest, victim, "user-");
    await seed(victim, await signedRecords(20, "v/", clock.now() - 1000));
    await seed(honest, [...(await botSignUps("user-", 30, clock.now() - 1000)), ...(await signedRecords(20, "h/", clock.now() - 1000))]);
    /** One refresh of the victim, by ranges (no checkpoint: no change-feed shortcut). */
    const rangeRun = rangeRefresher(clock, victim);
    await rangeRun(LATEST);
    const first = { sent: signUps(), refusals: limitRefusals(), stored: await accounts(victim, "user-") };
    assert.equal(first.stored, 10, "the first run met the quota");
    assert.equal(first.sent, 30);
    assert.equal(first.refusals, 20);
    assert.equal(await victim.records.get("h/19").then((r) => r?.k), "h/19", "the ordinary records came");
    assert.equal(await honest.records.get("v/19").then((r) => r?.k), "v/19", "ours were pushed");
    // Later changes of the honest server, stored there and not relayed: the held run still brings them.
    const later = await signedRecords(5, "later/", clock.now());
    for (const r of later) await honest.records.merge(r);
    await rangeRun(LATEST);
    const came = (await Promise.all(later.map((r) => victim.records.get(r.k)))).filter((r) => r !== undefined).length;
    assert.equal(came, 5, "the peer's other changes came in the held run");
    const second = { sent: signUps(), refusals: limitRefusals(), stored: await accounts(victim, "user-") };
    console.log(`# range runs before the refill: sign-ups sent ${first.sent} then ${second.sent - first.sent}; refused ${first.refusals} then ${second.refusals - first.refusals}`);
    assert.equal(second.sent, first.sent, "the second run, the quota not refilled, fetched no sign-up again");
    assert.equal(second.refusals, first.refusals, "nor verified and refused one again");
    // Held until the quota refills; then each run stores as many as it can take, and the rest wait for the next refill.
    for (let i = 0; i < 4 && (await accounts(victim, "user-")) < 30; i++) await rangeRun(WINDOW);
    assert.equal(await accounts(victim, "user-"), 30, "all arrived after the refills");
    assert.ok(signUps() <= 30 + 20 + 10, `sign-ups sent ${signUps()}: each refused one fetched once more per refill at most`);
  });

  it("while the quota is empty, the peer's later changes still come by refresh; the refused sign-ups wait in the retries until it refills", { timeout: T }, async () => {
    const { clock, dialer, listener } = await linkedPair(nodes, {}, { limits: LIMITS });
    const refused: RefusalEvent[] = [];
    dialer.on("refused", (e) => refused.push(e));
    const signUpRefusals = () => refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length;
    const feed = dialer.sync.range!.index.feed;
    for (const r of await botSignUps("user-", 30, clock.now())) await listener.records.merge(r);
    const refresh = refresher(clock, dialer);
    await refresh();
    assert.equal(await accounts(dialer, "user-"), 10, "the first refresh met the quota");
    assert.equal(signUpRefusals(), 20);
    // Later changes of the listener, stored there but not relayed: the next refresh brings them, the quota still empty.
    const later = await signedRecords(5, "later/", clock.now());
    for (const r of later) await listener.records.merge(r);
    await refresh();
    const came = (await Promise.all(later.map((r) => dialer.records.get(r.k)))).filter((r) => r !== undefined).length;
    console.log(`# a refresh, quota empty: ${came} of 5 later changes came; sign-ups refused again ${signUpRefusals() - 20}`);
    assert.equal(came, 5, "the later changes came by refresh");
    assert.equal(signUpRefusals(), 20, "no refused sign-up fetched again before the refill");
    assert.equal((await feed.retries(listener.nodeAddress())).length, 20, "the refused sign-ups' ids kept with the checkpoint");
    await refresh(WINDOW);
    assert.equal(await accounts(dialer, "user-"), 20);
    await refresh(WINDOW);
    assert.equal(await accounts(dialer, "user-"), 30, "all stored once the quota allowed");
    assert.deepEqual(await feed.retries(listener.nodeAddress()), []);
    assert.equal(dialer.syncProgress.runs.incomplete, 0);
  });
});
