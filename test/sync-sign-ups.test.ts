/**
 * Sign-ups (`==<user>` first-writer keys) that come through server links:
 * anyone can prove a fresh key and say it is a server, so they are charged
 * too, to larger buckets than a client's (found by an outside attack check:
 * "S1" pushed 200 sign-ups with syncPush, "R2" added 100 to a fetch answer,
 * and all were stored). A refused sign-up is just not stored: no strike, the
 * sync goes on, and an honest server's relayed sign-ups still fit.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDbRecord } from "../src/index.js";
import { DEFAULT_LIMITS, resolveLimits } from "../src/limits/limits.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { SignUpQuota } from "../src/node/sign-up-quota.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { portOf, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink } from "./helpers/raw-peer.js";
import { accounts, botSignUps, contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;
const TOPIC = "sync-sign-ups";
const past = () => Date.now() - 10_000_000;
/** Loopback is not exempt here, so the per-IP buckets apply to the test's addresses. */
const LIMITS = { exemptIps: [], maxServerSignUpsPerIp: 40 };

const strikes = (refused: RefusalEvent[]) => refused.filter((e) => e.code !== ErrorCode.SIGN_UP_LIMIT && e.code !== ErrorCode.SYNC_REFUSED);

describe("sign-ups relayed by servers are charged", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("the limit has a default and is validated", () => {
    assert.equal(DEFAULT_LIMITS.maxServerSignUpsPerIp, 10 * DEFAULT_LIMITS.maxSignUpsPerIp);
    assert.equal(resolveLimits({ maxServerSignUpsPerIp: 5 }).maxServerSignUpsPerIp, 5);
    assert.throws(() => resolveLimits({ maxServerSignUpsPerIp: -1 }), /maxServerSignUpsPerIp must be a number >= 0/);
  });

  it("server buckets: per identity and IP, 4 x per /24, exempt IPs by identity alone, refilled over the window", () => {
    let now = 0;
    const limits = { ...DEFAULT_LIMITS, maxServerSignUpsPerIp: 5, exemptIps: ["10.9.9.9"] };
    const quota = new SignUpQuota(limits, () => now, (from) => from.provenServer);
    const [record] = [{ k: "==x", h: "ab" } as ToolDbRecord];
    const server = (address: string, host: string) => ({ address, host, provenServer: true }) as unknown as PeerSession;
    const take = (from: PeerSession) => {
      let n = 0;
      while (quota.check(record!, from) === null && n < 100) {
        quota.charge(from);
        n++;
      }
      return n;
    };
    assert.equal(take(server("a", "10.0.0.1")), 5);
    assert.equal(take(server("b", "10.0.0.1")), 0, "a fresh identity on the same IP gets nothing more");
    assert.match(quota.check(record!, server("b", "10.0.0.1"))!, /relaying server's address used up/);
    for (let ip = 2; ip <= 6; ip++) take(server(`c${ip}`, `10.0.0.${ip}`));
    assert.equal(take(server("d", "10.0.0.7")), 0, "the /24 holds 4 x one address");
    assert.equal(take(server("e", "10.0.1.1")), 5, "another /24 is not affected");
    assert.equal(take(server("f", "10.9.9.9")), 5, "an exempt IP: its identity alone");
    now += DEFAULT_LIMITS.signUpWindow;
    assert.equal(take(server("a", "10.0.0.1")), 5, "refilled after the window");
  });

  it("S1: a self-proven 'server' pushes 200 sign-ups with syncPush, then a second identity on its address 200 more: the address's server quota applies, no strike; an honest server's relayed sign-ups still sync", { timeout: T }, async () => {
    const { db: victim, refused } = await fx.server({ limits: LIMITS });
    const own = await signedRecords(50, "v/", past());
    await seed(victim, own);
    let pushes = 0;
    const push = async (from: string, records: ToolDbRecord[]): Promise<{ ack?: Frame; link: RawLink }> => {
      const link = await RawLink.open(portOf(victim), { topic: TOPIC, from });
      await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
      const id = `push-${++pushes}`;
      const ack = link.next((f) => f.id === id && f.type === "syncPushAck", T).catch(() => undefined);
      link.send({ type: "syncPush", id, to: [], records });
      return { ack: await ack, link };
    };
    const first = await push("127.0.0.60", await botSignUps("bot-", 200));
    const second = await push("127.0.0.60", await botSignUps("bot2-", 200));
    const stored = await accounts(victim, "bot");
    const refusals = refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length;
    console.log(`# S1 400 pushed from one address: stored=${stored} (cap ${LIMITS.maxServerSignUpsPerIp}), SIGN_UP_LIMIT refusals=${refusals}, acks ${first.ack?.error ?? "ok"}/${second.ack?.error ?? "ok"}`);
    assert.ok(stored <= LIMITS.maxServerSignUpsPerIp, `${stored} sign-ups stored from one address`);
    assert.ok(stored >= 1);
    assert.ok(refusals >= 400 - stored - 1);
    assert.deepEqual(strikes(refused), [], "a quota refusal is no strike");
    assert.equal(first.link.isClosed || second.link.isClosed, false, "the links are kept");
    // An honest server (another address, same /24) relays its clients' sign-ups: they fit in its own bucket.
    const { db: honest } = await fx.server();
    const relayed = await botSignUps("user-", 30);
    await seed(honest, [...relayed, ...(await signedRecords(50, "h/", past()))]);
    const done = new Promise<RangeSyncRun>((resolve) => victim.sync.range!.once("done", resolve));
    victim.network.connectTo("127.0.0.1", portOf(honest));
    const run = await done;
    console.log(`# S1 honest run: mode=${run.mode} complete=${run.complete} fetched=${run.fetched}; relayed sign-ups stored=${await accounts(victim, "user-")}`);
    assert.equal(run.complete, true);
    assert.equal(await accounts(victim, "user-"), 30);
    const held = await contents(victim);
    for (const r of own) assert.equal(held.get(r.k), r.h);
  });

  it("sign-ups an honest server relays beyond the quota are fetched again by a later run once it refills", { timeout: T }, async () => {
    const { db: victim, refused } = await fx.server({ limits: { ...LIMITS, maxServerSignUpsPerIp: 10, signUpWindow: 3000 } });
    // The honest server answers a repeat of the same ranges: a run that stored nothing new since the last (the quota
    // not refilled yet on a loaded box) sent the same ranges, refused for a minute by default, and the run ended
    // incomplete (seen once in CI). What this test proves is the quota's, not that guard's (sync-gate tests it).
    const { db: honest } = await fx.server({ rangeSync: { budget: { repeatWindowMs: 100 } } });
    const relayed = await botSignUps("user-", 30);
    await seed(honest, [...relayed, ...(await signedRecords(50, "h/", past()))]);
    const run = async () => {
      const done = new Promise<RangeSyncRun>((resolve) => victim.sync.range!.once("done", resolve));
      victim.network.connectTo("127.0.0.1", portOf(honest));
      const result = await done;
      victim.network.disconnectFrom("127.0.0.1", portOf(honest));
      await waitUntil(() => !victim.network.peers.some((p) => p.address === honest.nodeAddress()), 10_000, "the link to drop");
      return result;
    };
    const counts: string[] = [];
    for (let i = 0; i < 8 && (await accounts(victim, "user-")) < 30; i++) {
      const r = await run();
      counts.push(`${r.mode}:${await accounts(victim, "user-")}`);
      assert.equal(r.complete, true, r.reason);
      // The quota's window passes first, so each run can store more.
      await new Promise((res) => setTimeout(res, 3100));
    }
    console.log(`# runs (mode:sign-ups stored) ${counts.join(" ")}; SIGN_UP_LIMIT refusals=${refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length}`);
    assert.ok(Number(counts[0]!.split(":")[1]) < 30, "the first run met the quota");
    assert.equal(await accounts(victim, "user-"), 30, "later runs fetched the rest");
    assert.deepEqual(strikes(refused), []);
    assert.equal((await run()).mode, "changes", "with everything stored, the checkpoint moves on");
    // The same by the change feed: its checkpoint stays before the refused ones.
    await new Promise((res) => setTimeout(res, 3000));
    await seed(honest, await botSignUps("late-", 15));
    const feedCounts: string[] = [];
    for (let i = 0; i < 8 && (await accounts(victim, "late-")) < 15; i++) {
      const r = await run();
      feedCounts.push(`${r.mode}:${await accounts(victim, "late-")}`);
      await new Promise((res) => setTimeout(res, 1500));
    }
    console.log(`# by the feed: ${feedCounts.join(" ")}`);
    assert.equal(feedCounts[0], "changes:10");
    assert.equal(await accounts(victim, "late-"), 15);
  });

  it("sign-ups an honest server pushes beyond the quota: the victim keeps no checkpoint past them, so later runs push them again", { timeout: T }, async () => {
    // Runs seconds apart: the victim answers the same ranges again (it refuses repeats within 60 s by default).
    const { db: victim, refused } = await fx.server({ limits: { ...LIMITS, maxServerSignUpsPerIp: 10, signUpWindow: 3000 }, rangeSync: { budget: { repeatWindowMs: 100 } } });
    const { db: honest } = await fx.server();
    await seed(honest, [...(await botSignUps("pushed-", 30)), ...(await signedRecords(20, "h/", past()))]);
    const counts: string[] = [];
    for (let i = 0; i < 8 && (await accounts(victim, "pushed-")) < 30; i++) {
      const done = new Promise<RangeSyncRun>((resolve) => honest.sync.range!.once("done", resolve));
      honest.network.connectTo("127.0.0.1", portOf(victim));
      const r = await done;
      honest.network.disconnectFrom("127.0.0.1", portOf(victim));
      await waitUntil(() => !honest.network.peers.some((p) => p.address === victim.nodeAddress()), 10_000, "the link to drop");
      counts.push(`${r.mode}:${r.pushed}:${await accounts(victim, "pushed-")}${r.reason ? `(${r.reason})` : ""}`);
      await new Promise((res) => setTimeout(res, 1500));
    }
    console.log(`# pushed by the honest server (mode:pushed:stored) ${counts.join(" ")}`);
    assert.ok(Number(counts[0]!.split(":")[2]) < 30, "the first run met the quota");
    assert.equal(await accounts(victim, "pushed-"), 30);
    assert.deepEqual(strikes(refused), []);
  });

  it("R2: a modified server adds 100 sign-ups nobody asked for to its fetch answers: the quota applies, the run completes, the asked records and the victim's data are intact", { timeout: T }, async () => {
    const { db: victim, refused } = await fx.server({ limits: { ...LIMITS, maxServerSignUpsPerIp: 20 } });
    const { db: fake } = await fx.server();
    const own = await signedRecords(100, "v/", past() + 50_000, "new");
    await seed(victim, own);
    const theirs = await signedRecords(50, "f/", past());
    await seed(fake, theirs);
    const stale = await signedRecords(100, "v/", past(), "old");
    const unasked = await botSignUps("fbot-", 100);
    const range = fake.sync.range!;
    const honestly = range.handle.bind(range);
    let fetches = 0;
    range.handle = (message, from) => {
      if (message.type === "syncFetch") {
        fetches++;
        const send = from.sendRaw.bind(from) as (...a: unknown[]) => boolean;
        from.sendRaw = ((frame: string, ...rest: unknown[]) => {
          if (!frame.startsWith(`{"type":"syncRecords","id":${JSON.stringify(message.id)}`)) return send(frame, ...rest);
          from.sendRaw = send as typeof from.sendRaw;
          const parsed = JSON.parse(frame) as { records: unknown[] };
          parsed.records.push(...stale, ...unasked);
          return send(JSON.stringify(parsed), ...rest);
        }) as typeof from.sendRaw;
      }
      return honestly(message, from);
    };
    const done = new Promise<RangeSyncRun>((resolve) => victim.sync.range!.once("done", resolve));
    victim.network.connectTo("127.0.0.1", portOf(fake));
    const run = await done;
    const held = await contents(victim);
    const stored = [...held.keys()].filter((k) => k.startsWith("==fbot-")).length;
    console.log(`# R2 run complete=${run.complete} fetched=${run.fetched} fetches=${fetches}; unasked sign-ups stored=${stored} (cap 20)`);
    assert.ok(fetches >= 1);
    assert.equal(run.complete, true, run.reason);
    assert.ok(stored <= 20, `${stored} unasked sign-ups stored`);
    for (const r of own) assert.equal(held.get(r.k), r.h, "newer versions kept");
    for (const r of theirs) assert.equal(held.get(r.k), r.h, "the asked records stored");
    assert.deepEqual(strikes(refused), [], "a quota refusal is no strike");
    await fake.putData("after", 1);
    await waitUntil(async () => (await victim.records.get("after"))?.v === 1, 10_000, "a relayed write after the run");
  });
});
