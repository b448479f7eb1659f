/**
 * Sign-ups a peer's change feed lists that our sign-up quota can NEVER take
 * (`limits.maxServerSignUpsPerIp: 0`: a server that takes no relayed sign-ups).
 * A refusal by a quota that refills keeps our checkpoint of that feed before
 * the refused sign-ups, to fetch them again once it refills
 * (sync-refresh-deferred.test.ts). A quota of 0 was counted as one that
 * refills, though it never does: the wait until it could take them came out
 * as 0, so no hold was set, the checkpoint never moved past them, and every
 * run fetched them again and stopped there: the peer's later changes beyond
 * that first page were never pulled by change feed. Such a refusal is now
 * for good, like any other refused record: the checkpoint moves on.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DEFAULT_LIMITS } from "../src/limits/limits.js";
import { ErrorCode, type RefusalEvent, type ToolDb, type ToolDbRecord } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { SignUpQuota } from "../src/node/sign-up-quota.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { closeAll, waitUntil } from "./helpers/nodes.js";
import { LATEST, countSync, linkedPair, sessionTo } from "./helpers/refresh-pair.js";
import { accounts, botSignUps, contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
/** Small frames: a page of the change feed lists ~100 ids, so the feed below takes a few pages. */
const FRAMES = { maxMessageBytes: 16 * 1024 };
/** The victim takes no sign-ups relayed by servers; loopback is not exempt here. */
const CLOSED = { exemptIps: [], maxServerSignUpsPerIp: 0 };

const feedOf = (db: ToolDb) => db.sync.range!.index.feed;

describe("sign-ups refused by a quota of 0 do not stall the change feed", { timeout: 2 * T }, () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("a quota of 0 refuses for good (its refusal is not one that refills); one above 0 refills", () => {
    const quota = new SignUpQuota({ ...DEFAULT_LIMITS, exemptIps: [], maxServerSignUpsPerIp: 0 }, () => 0, (from) => from.provenServer);
    const server = { address: "a", host: "10.0.0.1", provenServer: true } as unknown as PeerSession;
    const problem = quota.check({ k: "==x", h: "ab" } as ToolDbRecord, server);
    assert.ok(problem !== null, "refused");
    assert.equal(quota.refills(problem), false, problem);
    const open = new SignUpQuota({ ...DEFAULT_LIMITS, exemptIps: [], maxServerSignUpsPerIp: 1 }, () => 0, (from) => from.provenServer);
    open.charge(server);
    const used = open.check({ k: "==y", h: "ab" } as ToolDbRecord, server);
    assert.ok(used !== null && open.refills(used), `${used}`);
  });

  it("the dialed peer's feed lists sign-ups, then ordinary records: the records after them arrive by change feed, the checkpoint moves past the sign-ups, and they are not fetched again", { timeout: T }, async () => {
    const { clock, dialer: victim, listener: peer } = await linkedPair(nodes, FRAMES, { limits: CLOSED });
    const refused: RefusalEvent[] = [];
    victim.on("refused", (e) => refused.push(e));
    const signUpRefusals = () => refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length;
    const runs: RangeSyncRun[] = [];
    victim.sync.range!.on("done", (run: RangeSyncRun) => runs.push(run));
    let completed = victim.syncProgress.completed;
    const refresh = async () => {
      clock.advance(LATEST);
      await waitUntil(() => victim.syncProgress.completed > completed && victim.syncProgress.running === 0, 20_000, `refresh after run ${completed}`);
      completed = victim.syncProgress.completed;
      return runs.at(-1)!;
    };
    // Stored on the peer, not relayed (a lost relay): only its change feed brings them. Sign-ups first, then records
    // over more than two pages of the feed.
    const page = peer.frames.idsPerMessage;
    await seed(peer, await botSignUps("user-", 20, clock.now()));
    const records = await signedRecords(2 * page + 10, "later/", clock.now());
    await seed(peer, records);

    const first = await refresh();
    assert.equal(first.mode, "changes");
    assert.equal(await accounts(victim, "user-"), 0, "the sign-ups are refused");
    assert.equal(signUpRefusals(), 20);
    const held = await contents(victim);
    const missing = records.filter((r) => held.get(r.k) !== r.h).length;
    console.log(`# first refresh: ${records.length} records after 20 refused sign-ups (pages of ${page} ids): ${missing} missing; checkpoint ${(await feedOf(victim).checkpoint(peer.nodeAddress()))?.seq} of head ${feedOf(peer).head}`);
    assert.equal(missing, 0, "the records after the sign-ups arrive by change feed");
    const cp = await feedOf(victim).checkpoint(peer.nodeAddress());
    assert.deepEqual(cp && { epoch: cp.epoch, seq: cp.seq }, { epoch: feedOf(peer).epoch, seq: feedOf(peer).head }, "the checkpoint moved past the sign-ups");

    // The next refreshes neither fetch nor refuse them again; the peer's later changes come by change feed.
    const out = countSync(sessionTo(victim, peer));
    const again = await refresh();
    assert.equal(again.mode, "changes");
    assert.equal(out.frames.filter((f) => f === "syncFetch").length, 0, `no fetch of the refused sign-ups: ${out.frames.join(",")}`);
    assert.equal(signUpRefusals(), 20, "nothing refused again");
    const late = await signedRecords(5, "late/", clock.now());
    await seed(peer, late);
    assert.equal((await refresh()).mode, "changes");
    const now = await contents(victim);
    for (const r of late) assert.equal(now.get(r.k), r.h, `${r.k} arrived`);
    assert.equal(victim.syncProgress.runs.incomplete, 0);
  });

  it("the dialing peer pushes sign-ups the dialed victim never takes: the victim's checkpoint of the dialer moves past them, and they are not pushed again", { timeout: T }, async () => {
    const { clock, dialer: peer, listener: victim } = await linkedPair(nodes, FRAMES, {}, { limits: CLOSED });
    const refused: RefusalEvent[] = [];
    victim.on("refused", (e) => refused.push(e));
    const signUpRefusals = () => refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length;
    let completed = peer.syncProgress.completed;
    const refresh = async () => {
      clock.advance(LATEST);
      await waitUntil(() => peer.syncProgress.completed > completed && peer.syncProgress.running === 0, 20_000, `refresh after run ${completed}`);
      completed = peer.syncProgress.completed;
    };
    await seed(peer, await botSignUps("pushed-", 20, clock.now()));
    const records = await signedRecords(30, "pushed/", clock.now());
    await seed(peer, records);
    await refresh();
    assert.equal(signUpRefusals(), 20);
    const held = await contents(victim);
    for (const r of records) assert.equal(held.get(r.k), r.h, `${r.k} pushed`);
    const cp = await feedOf(victim).checkpoint(peer.nodeAddress());
    assert.deepEqual(cp && { epoch: cp.epoch, seq: cp.seq }, { epoch: feedOf(peer).epoch, seq: feedOf(peer).head }, "the victim's checkpoint of the dialer moved past the sign-ups");
    const out = countSync(sessionTo(peer, victim));
    await refresh();
    assert.equal(out.frames.filter((f) => f === "syncPush" || f === "syncOffer").length, 0, `nothing offered or pushed again: ${out.frames.join(",")}`);
    assert.equal(signUpRefusals(), 20, "nothing refused again");
    assert.equal(peer.syncProgress.runs.incomplete, 0);
  });
});
