/**
 * Resource limits of a server: the small classes on their own (manual clock,
 * no network), then each limit on a real server over real sockets, checked
 * by counts of refusals and answers, never by timings.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TimerGroup } from "../src/base/clock.js";
import { ErrorCode } from "../src/base/errors.js";
import { resolveLimits, DEFAULT_LIMITS } from "../src/limits/limits.js";
import { TokenBucket } from "../src/limits/rate-limiter.js";
import { signRecord } from "../src/node/record-signer.js";
import type { ToolDb } from "../src/node/tooldb.js";
import { BanList } from "../src/network/ban-list.js";
import { CloseCode } from "../src/network/connection.js";
import { FairIntake, type IntakeSink } from "../src/network/fair-intake.js";
import type { RefusalEvent } from "../src/network/network-adapter.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { record, waitFor, waitForCount } from "./helpers/wait.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 5000;
const TOPIC = "test";

const unhandled = collectUnhandledRejections();
afterEach(() => {
  terminateRawLinks();
  assert.deepEqual(unhandled.splice(0), [], "unhandled rejections during the test");
});

describe("limit building blocks (manual clock)", () => {
  it("a token bucket gives `burst` at once, then `rate` per second", () => {
    const clock = new ManualClock(1000);
    const bucket = new TokenBucket(10, 5, () => clock.now());
    let taken = 0;
    while (bucket.tryTake()) taken++;
    assert.equal(taken, 5);
    assert.equal(bucket.msUntil(), 100);
    clock.advance(1000);
    taken = 0;
    while (bucket.tryTake()) taken++;
    assert.equal(taken, 5, "refill is capped at the burst");
    clock.advance(300);
    taken = 0;
    while (bucket.tryTake()) taken++;
    assert.equal(taken, 3);
  });

  it("a token bucket on the wall clock refills from a step back at once, not once the clock is back where it was", () => {
    const clock = new ManualClock(Date.now());
    const bucket = new TokenBucket(10, 5, () => clock.now());
    while (bucket.tryTake());
    clock.stepWall(-3_600_000);
    assert.equal(bucket.tryTake(), false, "the step itself refills nothing");
    clock.advance(300);
    let taken = 0;
    while (bucket.tryTake()) taken++;
    assert.equal(taken, 3, "300 ms after the step: 3 tokens (before: none for an hour)");
  });

  it("a take that must leave tokens in the bucket (work done for a peer) never takes its reserve", () => {
    const clock = new ManualClock(1000);
    const bucket = new TokenBucket(10, 8, () => clock.now());
    let taken = 0;
    while (bucket.tryTake(1, 4)) taken++;
    assert.equal(taken, 4, "the reserve of 4 is left");
    assert.ok(!bucket.tryTake(1, 4));
    taken = 0;
    while (bucket.tryTake()) taken++;
    assert.equal(taken, 4, "the peer's own frames still get the reserve");
  });

  /** A sink whose dispatches stay outstanding until the test settles them. */
  function sink(name: string, log: string[], settle: Array<() => void>, drops: string[]): IntakeSink & { paused: boolean } {
    const s = {
      paused: false,
      dispatch(frame: string) {
        log.push(frame);
        return new Promise<void>((resolve) => settle.push(resolve));
      },
      pause: () => void (s.paused = true),
      resume: () => void (s.paused = false),
      overflow: () => void drops.push(name),
      held: () => false,
    };
    return s;
  }

  it("the intake serves waiting peers round-robin within the per-peer and global caps, pausing them meanwhile", async () => {
    const clock = new ManualClock();
    const limits = { ...resolveLimits({ messageRate: Infinity, maxOutstandingPerPeer: 2, maxOutstanding: 2 }) };
    const intake = new FairIntake(limits, new TimerGroup(clock), () => clock.now());
    const log: string[] = [];
    const settle: Array<() => void> = [];
    const drops: string[] = [];
    const a = sink("a", log, settle, drops);
    const b = sink("b", log, settle, drops);
    const la = intake.open(a);
    const lb = intake.open(b);
    for (let i = 0; i < 6; i++) la.push(`a${i}`);
    for (let i = 0; i < 3; i++) lb.push(`b${i}`);
    assert.deepEqual(log, ["a0", "a1"], "peer a is at its own cap, then everyone at the global cap");
    assert.equal(a.paused && b.paused, true);
    while (settle.length > 0) {
      settle.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(log, ["a0", "a1", "a2", "b0", "a3", "b1", "a4", "b2", "a5"]);
    assert.equal(a.paused || b.paused, false, "resumed once drained");
    assert.deepEqual(drops, []);
    assert.equal(intake.inFlight, 0);
  });

  it("the intake paces a peer by its token bucket and drops frames past a full queue", () => {
    const clock = new ManualClock();
    const limits = resolveLimits({ messageRate: 10, messageBurst: 2, maxQueuedMessages: 3 });
    const intake = new FairIntake(limits, new TimerGroup(clock), () => clock.now());
    const log: string[] = [];
    const drops: string[] = [];
    const s: IntakeSink = { dispatch: (f) => void log.push(f), pause: () => undefined, resume: () => undefined, overflow: () => void drops.push("x"), held: () => false };
    const link = intake.open(s);
    for (let i = 0; i < 8; i++) link.push(`m${i}`);
    assert.deepEqual(log, ["m0", "m1"], "the burst");
    assert.equal(drops.length, 3, "3 queued, 3 dropped");
    clock.advance(100);
    assert.deepEqual(log, ["m0", "m1", "m2"], "one token per 100 ms");
    clock.advance(1000);
    assert.deepEqual(log, ["m0", "m1", "m2", "m3", "m4"]);
    assert.equal(clock.pending, 0, "no timer left once the queue is empty");
  });

  it("bans: an identity at once, an IP after ipBanAfter offences, exempt IPs never; bans expire", () => {
    const clock = new ManualClock(0);
    const bans = new BanList({ banDuration: 1000, ipBanAfter: 2, maxBans: 100 }, () => clock.now());
    assert.deepEqual(bans.offence("peer-1", "10.0.0.1", "strikes"), { identity: true, ip: false });
    assert.ok(bans.identity("peer-1"));
    assert.equal(bans.ip("10.0.0.1"), undefined, "one offence does not ban an IP");
    assert.deepEqual(bans.offence("peer-2", "10.0.0.1", "strikes"), { identity: true, ip: true });
    assert.match(bans.ip("10.0.0.1")!.reason, /2 offences/);
    clock.advance(1001);
    assert.equal(bans.identity("peer-1"), undefined);
    assert.equal(bans.ip("10.0.0.1"), undefined);
    assert.deepEqual(bans.offence(undefined, "10.0.0.1", "x"), { identity: false, ip: false }, "old offences expired with their ban");
    const off = new BanList({ banDuration: 0, ipBanAfter: 1, maxBans: 100 }, () => clock.now());
    assert.deepEqual(off.offence("p", "10.0.0.2", "x"), { identity: false, ip: false }, "banDuration 0 disables bans");
  });

  it("limits are validated", () => {
    assert.throws(() => resolveLimits({ maxConnections: -1 }), { code: ErrorCode.INVALID_ARGUMENT });
    assert.throws(() => resolveLimits({ nope: 1 } as never), { code: ErrorCode.INVALID_ARGUMENT });
    assert.throws(() => resolveLimits({ anonymousKeyShare: 2 }), { code: ErrorCode.INVALID_ARGUMENT });
    assert.deepEqual(resolveLimits(undefined), DEFAULT_LIMITS);
  });
});

describe("limits on a server (real sockets on loopback)", () => {
  let servers: ToolDb[] = [];
  afterEach(async () => {
    terminateRawLinks();
    await closeAll(...servers);
    servers = [];
  });

  async function server(limits: Parameters<typeof startServer>[0] = {}): Promise<ToolDb> {
    const srv = await startServer({ topic: TOPIC, ...limits });
    servers.push(srv);
    return srv;
  }

  function refusals(srv: ToolDb, code: ErrorCode): RefusalEvent[] {
    return rec.get(srv)!.events.map(([e]) => e).filter((e) => e.code === code);
  }
  const rec = new Map<ToolDb, { events: Array<[RefusalEvent]> }>();
  function watch(srv: ToolDb): void {
    rec.set(srv, record<[RefusalEvent]>(srv, "refused"));
  }

  it("links per IP beyond maxConnectionsPerIp are refused; past maxUnverifiedConnections the oldest handshake is evicted (CONNECTION_LIMIT)", async () => {
    const srv = await server({ limits: { maxUnverifiedConnections: 3, maxConnectionsPerIp: 2, exemptIps: [] } });
    watch(srv);
    const port = portOf(srv);
    const limited = () => refusals(srv, ErrorCode.CONNECTION_LIMIT);
    // Two from 127.0.0.5 fit; the third from it is over its per-IP cap.
    const fromFive = [];
    for (let i = 0; i < 3; i++) fromFive.push(await RawLink.open(port, { topic: TOPIC, from: "127.0.0.5" }));
    assert.equal((await fromFive[2]!.waitClose()).code, CloseCode.OVERLOADED);
    assert.match(limited()[0]!.reason, /too many links from 127\.0\.0\.5 \(2\)/);
    // A third unverified link from elsewhere fits; a fourth evicts the oldest unfinished handshake.
    const sixth = await RawLink.open(port, { topic: TOPIC, from: "127.0.0.6" });
    const seventh = await RawLink.open(port, { topic: TOPIC, from: "127.0.0.7" });
    assert.equal((await fromFive[0]!.waitClose()).code, CloseCode.OVERLOADED);
    assert.match(limited()[1]!.reason, /evicted: too many links in handshake \(3\)/);
    assert.equal(fromFive[1]!.isClosed || sixth.isClosed || seventh.isClosed, false);
    assert.deepEqual(srv.network.guard.gate.counts, { verified: 0, unverified: 3, ips: 3 });
    // A real client gets in even while the handshake slots are full.
    const client = await startClient([srv], { topic: TOPIC });
    servers.push(client);
    assert.equal(srv.network.guard.gate.counts.verified, 1);
    terminateRawLinks();
    await waitUntil(() => srv.network.guard.gate.counts.unverified === 0, T, "links released");
  });

  it("at maxConnections a newcomer takes the slot of an idle link, never of a link at work (CONNECTION_LIMIT)", async () => {
    const srv = await server({ limits: { maxConnections: 2 } });
    watch(srv);
    const port = portOf(srv);
    await srv.putData("k", "v");
    const busy = await RawLink.connect(port, { topic: TOPIC });
    const idle = await RawLink.connect(port, { topic: TOPIC });
    await busy.get("k");
    // The third takes the idle link's slot.
    const third = await RawLink.connect(port, { topic: TOPIC });
    assert.equal((await idle.waitClose()).code, CloseCode.OVERLOADED);
    assert.match(refusals(srv, ErrorCode.CONNECTION_LIMIT)[0]!.reason, /evicted to make room at the connection limit \(2\)/);
    // With both links at work, a fourth is refused.
    await third.get("k");
    const fourth = await RawLink.open(port, { topic: TOPIC });
    fourth.send(await fourth.ping());
    assert.equal((await fourth.waitClose()).code, CloseCode.OVERLOADED);
    assert.match(refusals(srv, ErrorCode.CONNECTION_LIMIT)[1]!.reason, /too many connections \(2\); no idle link to evict/);
    assert.equal(srv.network.peers.length, 2);
    assert.equal(busy.isClosed || third.isClosed, false);
  });

  it("invalid UTF-8 in a text frame (ws closes 1007) reaches the refused event", async () => {
    const srv = await server();
    watch(srv);
    const peer = await RawLink.connect(portOf(srv), { topic: TOPIC });
    peer.sendBytes(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    assert.equal((await peer.waitClose()).code, 1007);
    await waitUntil(() => refusals(srv, ErrorCode.BAD_MESSAGE).length === 1, T, "the refusal");
    assert.match(refusals(srv, ErrorCode.BAD_MESSAGE)[0]!.reason, /invalid UTF-8/);
  });

  it("a peer over its message rate is slowed, not dropped: answers follow its token bucket", async () => {
    const clock = new ManualClock(Date.now());
    const srv = await server({ clock, heartbeatInterval: 0, limits: { messageRate: 10, messageBurst: 5 } });
    watch(srv);
    await srv.putData("k", "v");
    const peer = await RawLink.connect(portOf(srv), { topic: TOPIC });
    const answers = () => peer.frames.filter((f) => f.type === "put").length;
    const ids = Array.from({ length: 20 }, (_, i) => `rate-${i}`);
    for (const id of ids) peer.send({ type: "get", id, to: [], key: "k" });
    await waitUntil(() => answers() === 5, T, "the burst to be answered");
    // The rest wait (queued at the server, or held back in TCP while its
    // socket is paused) as long as its clock stands still...
    await waitUntil(() => srv.network.guard.intake!.queuedFrames >= 1, T, "the rest to wait");
    assert.equal(answers(), 5);
    // ...then go one per 100 ms of the server's clock (10 per second).
    for (let i = 1; i <= 15; i++) {
      clock.advance(100);
      await waitUntil(() => answers() === 5 + i, T, `answer ${5 + i}`);
    }
    assert.deepEqual(peer.frames.filter((f) => f.type === "put").map((f) => f.id), ids, "nothing dropped, order kept");
    assert.deepEqual(refusals(srv, ErrorCode.RATE_LIMITED), []);
    assert.equal(peer.isClosed, false);
  });

  it("store quotas: anonymous keys are refused first, owned keys fit until the total, a namespace has its own cap", async () => {
    const srv = await server({ limits: { maxStoreKeys: 8, anonymousKeyShare: 0.5, maxKeysPerAuthor: 3 } });
    watch(srv);
    const client = await startClient([srv], { topic: TOPIC });
    servers.push(client);
    const stored = waitForCount(srv, "put", 4 + 3 + 1 + 1, T);
    // 4 anonymous keys fit (0.5 × 8), the 5th and 6th are refused.
    for (let i = 0; i < 6; i++) await client.putData(`anon-${i}`, i);
    // 3 keys in the client's namespace fit, the 4th is over its cap.
    for (let i = 0; i < 4; i++) await client.putData(`mine-${i}`, i, true);
    // An update of a stored anonymous key still passes, and so does an account record (owned).
    await client.putData("anon-0", "updated");
    await client.signUp("alice", "pw");
    await stored;
    await waitUntil(() => refusals(srv, ErrorCode.QUOTA_EXCEEDED).length === 3, T, "3 quota refusals");
    const reasons = refusals(srv, ErrorCode.QUOTA_EXCEEDED).map((e) => e.key);
    assert.deepEqual(reasons, ["anon-4", "anon-5", client.getUserNamespacedKey("mine-3")]);
    assert.equal(srv.quota.size, 8);
    assert.equal((await srv.records.get("anon-0"))?.v, "updated");
    assert.equal(await srv.records.get("anon-4"), undefined);
    // The server's own writes are never refused.
    await srv.putData("operator", 1);
    assert.equal(srv.quota.size, 9);
  });

  it("subscriptions beyond maxSubscriptions are refused with SUBSCRIPTION_LIMIT", async () => {
    const srv = await server({ limits: { maxSubscriptions: 2 } });
    watch(srv);
    const client = await startClient([srv], { topic: TOPIC });
    servers.push(client);
    const refused = waitFor(srv, "refused", T, (e) => e.code === ErrorCode.SUBSCRIPTION_LIMIT);
    for (const key of ["s1", "s2", "s3"]) await client.subscribeData(key);
    const [event] = await refused;
    assert.equal(event.key, "s3");
    assert.equal(srv.remoteSubscriptions.total, 2);
    assert.equal(client.network.peers.length, 1, "not a strike: the link stays");
  });

  it("a peer dropped for strikes is banned by identity, its IP after repeated offences, and the bans expire", async () => {
    const clock = new ManualClock(Date.now());
    const srv = await server({ clock, heartbeatInterval: 0, limits: { banDuration: 60_000, ipBanAfter: 2, exemptIps: [] } });
    watch(srv);
    const port = portOf(srv);
    const from = "127.0.0.8";
    const good = await signRecord(srv.userAccount, "k", "v", clock.now(), 0, false);
    const strikeOut = async (peer: RawLink) => {
      for (let i = 0; i < 11; i++) peer.put({ ...good, v: `forged-${i}` });
      assert.equal((await peer.waitClose()).code, CloseCode.TOO_MANY_STRIKES);
    };
    // Proven: an offence bans the identity only when the peer proved its key (an unproven session
    // may carry a replayed peer record: test/replayed-identity-ban.test.ts).
    const first = await RawLink.open(port, { topic: TOPIC, from });
    await first.provenHandshake();
    await strikeOut(first);
    await waitUntil(() => refusals(srv, ErrorCode.BANNED).length === 1, T, "the identity ban");
    assert.match(refusals(srv, ErrorCode.BANNED)[0]!.reason, new RegExp(`identity ${first.id.clientId} banned for 60 s`));
    // The same identity again, from another address: refused at the handshake.
    const again = await RawLink.open(port, { topic: TOPIC, from: "127.0.0.9", id: first.id });
    void again.provenHandshake().catch(() => undefined);
    assert.equal((await again.waitClose()).code, CloseCode.BANNED);
    // A second identity from the same IP strikes out: now the IP is banned as well.
    await strikeOut(await RawLink.connect(port, { topic: TOPIC, from }));
    await waitUntil(() => refusals(srv, ErrorCode.BANNED).some((e) => /IP 127\.0\.0\.8/.test(e.reason)), T, "the IP ban");
    const fresh = await RawLink.open(port, { topic: TOPIC, from });
    assert.equal((await fresh.waitClose()).code, CloseCode.BANNED, "refused before any handshake");
    // Bans expire.
    clock.advance(60_001);
    const back = await RawLink.open(port, { topic: TOPIC, from, id: first.id });
    await back.provenHandshake();
    assert.equal(back.isClosed, false);
    assert.ok(srv.network.session(first.id.clientId));
  });
});
