/**
 * What a server keeps of a peer for its sync runs belongs to the peer's
 * address (its public key, proven on the link), not to one link of it:
 *
 * - refusal counts (sign-ups a quota that refills refused, records a custom
 *   verifier refused) that a run reads to decide whether its checkpoint may
 *   move on (change-sync.ts) cover every link of the peer: a refusal of a
 *   record that came on the peer's other link (dialed and accepted, or a
 *   reconnect while the old link closes) was not seen by the run
 *   (base/peer-keyed.ts); a link that only claims the address shares none;
 * - our checkpoint of a peer's feed never moves backwards within an epoch:
 *   the peer's commits (its runs with us) and our own runs both write it
 *   (change-feed.ts);
 * - the sign-ups a quota refused that held range runs leave out are kept by
 *   the peer's address: after a reconnect the first held run fetched them
 *   all once more (refused-sign-ups.ts).
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, describe, it } from "node:test";
import { ErrorCode, type ToolDb } from "../src/index.js";
import { PeerKeyed, type PeerLink } from "../src/base/peer-keyed.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY } from "../src/node/sync/range-sync.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { closeAll, linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink, rawIdentity } from "./helpers/raw-peer.js";
import { linkedPair, refresher } from "./helpers/refresh-pair.js";
import { accounts, botSignUps, seed, signedRecords } from "./helpers/signed-records.js";
import { closeIndexed, indexOn, withLevelStores } from "./helpers/sync-index-rig.js";

const T = 30_000;
const TOPIC = "sync-peer-state";

/** A link as PeerKeyed sees it, closed by `close()`. */
function fakeLink(address: string, provenServer: boolean) {
  const events = new EventEmitter();
  const connection = { closed: false, once: (event: "close", listener: () => void) => events.once(event, listener) };
  const link = { address, provenServer, connection } satisfies PeerLink;
  return { link, close: () => ((connection.closed = true), events.emit("close")) };
}

describe("sync state of a peer is kept by its address", { timeout: 4 * T }, () => {
  const fx = attackFixture(TOPIC, 30_000);
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("refusals on one link of a proven server count for its other link's run, kept while one of its links is open; a closed link reads on what it joined; a link that only claims the address shares nothing", () => {
    const counts = new PeerKeyed(() => ({ n: 0 }));
    const count = (link: PeerLink, n: number) => counts.each(link).forEach((state) => (state.n += n));
    const [dialed, accepted, claimer] = [fakeLink("peer", true), fakeLink("peer", true), fakeLink("peer", false)];
    const atStart = counts.of(dialed.link).n; // a run on the dialed link begins
    count(accepted.link, 3); // refused on the accepted link
    accepted.close();
    count(accepted.link, 1); // counted as that link closes
    count(claimer.link, 100);
    assert.equal(counts.of(dialed.link).n - atStart, 4, "the run sees every refusal of its peer");
    assert.equal(counts.of(claimer.link).n, 100, "an unproven claim of the address keeps its own count");
    dialed.close();
    assert.equal(counts.addresses, 0, "dropped with the peer's last link");
    assert.equal(counts.of(dialed.link).n, 4, "a closed link's run reads on from the state it joined");
    // A reconnect: the new link's run begins; a record of the old link refused after its close counts for both runs.
    const next = fakeLink("peer", true);
    const nextStart = counts.of(next.link).n;
    count(dialed.link, 1);
    assert.deepEqual([counts.of(next.link).n - nextStart, counts.of(dialed.link).n], [1, 5]);
    next.close();
    assert.equal(counts.addresses, 0);
  });

  it("a reconnect while the old link's records are still being verified: the quota's and a custom verifier's refusals of them count for the new link's run (real sockets)", { timeout: T }, async () => {
    const { db: victim, refused } = await fx.server({ limits: { exemptIps: [], maxServerSignUpsPerIp: 5 } });
    // The old link's records wait in their checks (a slow verification) until released, the link closed meanwhile.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let waiting = 0;
    const slow = async () => {
      waiting++;
      await released;
    };
    victim.addCustomVerification("app/", async () => (await slow(), false));
    const signUpRefusal = victim.quota.signUpRefusal.bind(victim.quota);
    victim.quota.signUpRefusal = async (record, from) => (await slow(), signUpRefusal(record, from));
    const id = await rawIdentity();
    const open = async () => {
      const link = await RawLink.open(portOf(victim), { topic: TOPIC, id });
      await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
      return link;
    };
    const session = () => victim.network.peers.find((p) => p.address === id.address && !p.connection.closed);
    const old = await open();
    await waitUntil(() => session() !== undefined, T, "the first link");
    const first = session()!;
    old.send({ type: "syncPush", id: "push", to: [], records: [...(await botSignUps("bot-", 20)), ...(await signedRecords(7, "app/", Date.now() - 1000))] });
    await waitUntil(() => waiting > 0, T, "the pushed records in their checks");
    old.terminate();
    await waitUntil(() => first.connection.closed, T, "the old link to close");
    await open();
    await waitUntil(() => session() !== undefined, T, "the new link");
    const next = session()!;
    // What a run on the new link reads when it begins, and after the old link's records were refused.
    const before = [victim.quota.signUpsDeferred(next), victim.customVerifiers.refusals(next)];
    release();
    const events = () => [refused.filter((e) => e.code === ErrorCode.SIGN_UP_LIMIT).length, refused.filter((e) => e.code === ErrorCode.CUSTOM_VERIFICATION_FAILED).length];
    await waitUntil(() => events()[0]! + events()[1]! > 0 && waiting === 27, T, "the old link's records refused");
    const seen = [victim.quota.signUpsDeferred(next) - before[0]!, victim.customVerifiers.refusals(next) - before[1]!];
    console.log(`# refused on the old link as it closed: ${JSON.stringify(events())} (sign-ups, custom); as the new link's run reads them: ${JSON.stringify(seen)}`);
    assert.ok(events()[0]! > 0 && events()[1]! > 0, "some of each refused");
    assert.deepEqual(seen, events(), "the new link's run sees every refusal of the peer's records");
  });

  it("our checkpoint of a peer's feed never moves backwards within an epoch, however its writes overlap, and after a restart", { timeout: T }, () =>
    withLevelStores("tooldb-peer-state-", async (level) => {
      let { records, index } = await indexOn(level, "db");
      await index.feed.setCheckpoint("p", { epoch: "e", seq: 10 }, 1000);
      await index.feed.setCheckpoint("p", { epoch: "e", seq: 5 }, 1001);
      assert.deepEqual(await index.feed.checkpoint("p"), { epoch: "e", seq: 10 }, "a lower write after a higher one");
      // The store slow to take the first of two writes under way at once (a run settling at the head it saw, the
      // peer's commit further on): the lower one, begun first, must not land last.
      const put = index.store.put.bind(index.store);
      let slow: () => void = () => undefined;
      let first = true;
      index.store.put = async (key: string, value: string) => {
        if (key === "cp" && first) {
          first = false;
          await new Promise<void>((resolve) => (slow = resolve));
        }
        return put(key, value);
      };
      const lower = index.feed.setCheckpoint("p", { epoch: "e", seq: 20 }, 1002);
      const higher = index.feed.setCheckpoint("p", { epoch: "e", seq: 30 }, 1003);
      await waitUntil(() => !first, T, "the first write at the store");
      await new Promise((resolve) => setImmediate(resolve));
      slow();
      await Promise.all([lower, higher]);
      assert.deepEqual(await index.feed.checkpoint("p"), { epoch: "e", seq: 30 }, "the higher of two overlapping writes");
      index.store.put = put;
      await closeIndexed({ records, index });
      ({ records, index } = await indexOn(level, "db"));
      await index.feed.setCheckpoint("p", { epoch: "e", seq: 25 }, 1004);
      assert.deepEqual(await index.feed.checkpoint("p"), { epoch: "e", seq: 30 }, "after a restart too");
      await index.feed.setCheckpoint("p", { epoch: "e2", seq: 1 }, 1005);
      assert.deepEqual(await index.feed.checkpoint("p"), { epoch: "e2", seq: 1 }, "a new epoch replaces it");
      await closeIndexed({ records, index });
    }));

  it("after a reconnect, a range run held by a sign-up quota fetches none of the sign-ups it refused on the old link", { timeout: T }, async () => {
    const LIMITS = { exemptIps: [], maxServerSignUpsPerIp: 10, signUpWindow: 20 * 60_000 };
    const { clock, dialer: fresh, listener: source } = await linkedPair(nodes, {}, { limits: LIMITS }, { rangeSync: { budget: { repeatWindowMs: 0 } } }, async (listener, at) => {
      await seed(listener, [...(await botSignUps("user-", 30, at.now() - 1000)), ...(await signedRecords(20, "h/", at.now() - 1000))]);
    });
    assert.equal(await accounts(fresh, "user-"), 10, "the copy met the quota");
    let refused = 0;
    fresh.on("refused", (e) => void (e.code === ErrorCode.SIGN_UP_LIMIT && refused++));
    await refresher(clock, fresh)(); // a held range run on this link: none fetched again
    assert.equal(refused, 0);
    // The link drops; the new server dials again. Its first run (at once, still held by the quota) is on the new link.
    const old = fresh.network.peers.find((p) => p.address === source.nodeAddress()) as PeerSession;
    const completed = fresh.syncProgress.completed;
    const runs: string[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(`${run.mode} ${run.complete ? "complete" : `incomplete (${run.reason})`}`));
    fresh.network.disconnectFrom("127.0.0.1", portOf(source));
    await waitUntil(() => old.connection.closed, T, "the old link to close");
    await linkServers(fresh, source, T);
    await waitUntil(() => fresh.syncProgress.completed > completed && fresh.syncProgress.running === 0, T, "the run on the new link");
    console.log(`# the held run on the new link: sign-ups refused again ${refused}; runs ${runs.join(", ")}`);
    assert.deepEqual(runs, ["range complete"], "a held range run on the new link");
    assert.equal(refused, 0, "no sign-up refused on the old link was fetched again");
    assert.equal(await accounts(fresh, "user-"), 10);
  });
});
