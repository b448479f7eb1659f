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
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb } from "../src/index.js";
import { closeAll, waitUntil } from "./helpers/nodes.js";
import { LATEST, countSync, linkedPair, sessionTo } from "./helpers/refresh-pair.js";
import { accounts, botSignUps } from "./helpers/signed-records.js";

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
    let runs = dialer.syncProgress.completed;
    const refresh = async (ms = LATEST) => {
      clock.advance(ms);
      await waitUntil(() => dialer.syncProgress.completed > runs && dialer.syncProgress.running === 0, 10_000, `refresh ${runs}`);
      runs = dialer.syncProgress.completed;
    };
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
});
