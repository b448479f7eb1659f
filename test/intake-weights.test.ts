/**
 * The outstanding caps weigh what a message costs the server: a small put
 * takes an eighth of a slot (a writer keeps enough puts in flight to keep
 * every verifying core busy), a large put its size over 32 KiB, a request
 * answered with data (a get) a whole slot. First the intake alone, then a
 * real server over a real socket, its puts held in a custom check.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { TimerGroup } from "../src/base/clock.js";
import { resolveLimits } from "../src/limits/limits.js";
import { FairIntake, type IntakeSink, MIN_RECORD_WEIGHT, RECORD_WEIGHT_BYTES, recordWeight } from "../src/network/fair-intake.js";
import type { ToolDb } from "../src/node/tooldb.js";
import { signRecord } from "../src/node/record-signer.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { closeAll, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { signedRecords, testAuthor } from "./helpers/signed-records.js";

const T = 30_000;
const past = () => Date.now() - 10_000_000;

describe("outstanding messages are weighed by what they cost", () => {
  const nodes: ToolDb[] = [];
  after(async () => {
    terminateRawLinks();
    await closeAll(...nodes);
  });

  it("a put weighs its size over 32 KiB, at least 1/8", () => {
    assert.equal(recordWeight(300), MIN_RECORD_WEIGHT);
    assert.equal(recordWeight(RECORD_WEIGHT_BYTES), 1);
    assert.equal(recordWeight(4 * RECORD_WEIGHT_BYTES), 4);
  });

  it("the intake runs weighed frames while the peer's weight is under its cap; one heavy frame waits for room", async () => {
    const clock = new ManualClock();
    const intake = new FairIntake(resolveLimits({ messageRate: Infinity, maxOutstandingPerPeer: 1, maxOutstanding: 100 }), new TimerGroup(clock), () => clock.now());
    const ran: string[] = [];
    const settle = new Map<string, () => void>();
    const sink: IntakeSink = {
      dispatch(frame) {
        ran.push(frame);
        const done = new Promise<void>((resolve) => settle.set(frame, resolve));
        return frame.startsWith("heavy") ? { done, weight: 3 } : frame.startsWith("get") ? done : { done, weight: 1 / 8 };
      },
      pause: () => undefined,
      resume: () => undefined,
      overflow: () => assert.fail("nothing is dropped"),
      held: () => false,
    };
    const link = intake.open(sink);
    for (let i = 0; i < 10; i++) link.push(`put${i}`);
    link.push("get");
    link.push("heavy");
    assert.deepEqual(ran, ["put0", "put1", "put2", "put3", "put4", "put5", "put6", "put7"], "8 puts of 1/8 fill one slot");
    assert.equal(intake.inFlight, 8, "the gauge counts messages, not weights");
    // A completion settles in a microtask, and the intake serves the next frames a macrotask later.
    const turn = async () => {
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    };
    settle.get("put0")!();
    await turn();
    assert.deepEqual(ran.slice(8), ["put8"], "room for one more eighth");
    for (const f of ["put1", "put2", "put3", "put4", "put5", "put6", "put7", "put8"]) settle.get(f)!();
    await turn();
    assert.deepEqual(ran.slice(9), ["put9", "get"], "then a get (1) fits beside a put (1/8): the cap is checked before each frame");
    settle.get("put9")!();
    settle.get("get")!();
    await turn();
    assert.deepEqual(ran.slice(11), ["heavy"], "a frame heavier than the cap goes in once there is room, alone");
    settle.get("heavy")!();
    await turn();
    assert.equal(intake.inFlight, 0);
  });

  it("a server takes 8 small puts of one peer per outstanding slot, holds its get behind them, and stores them all", { timeout: T }, async () => {
    const db = await startServer({ topic: "weights", limits: { messageRate: Infinity, maxOutstandingPerPeer: 1 } });
    nodes.push(db);
    const intake = db.network.guard.intake!;
    // Merges of one peer's puts go in the order they came: the first one, held here, holds every later one outstanding.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    db.addCustomVerification("held/", async () => (await held, true));
    const user = await testAuthor();
    const [kept] = await signedRecords(1, "kept/", past());
    await db.records.merge(kept!);
    const puts = await Promise.all(Array.from({ length: 12 }, (_, i) => signRecord(user, `held/${i}`, { i }, past() + i, 0, false)));
    const big = await signRecord(user, "held/big", "x".repeat(3 * RECORD_WEIGHT_BYTES), past(), 0, false);

    const link = await RawLink.open(portOf(db), { topic: "weights", from: "127.0.0.21" });
    await link.handshake();
    for (const record of puts) link.put(record);
    await waitUntil(() => intake.inFlight === 8 && intake.queuedFrames === 4, T, "8 puts taken, 4 waiting");
    let answered = false;
    const got = link.get(kept!.k).then((r) => ((answered = true), r));
    link.put(big);
    // The intake paused the socket: the get and the large put wait in it. A negative can only be watched for a while.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(intake.inFlight, 8, "no ninth message while 8 eighths fill the slot");
    assert.equal(answered, false, "the get waits behind the puts");
    release();
    assert.equal((await got).h, kept!.h, "the get is answered once there is room");
    await waitUntil(async () => (await db.records.get("held/big")) !== undefined, T, "the large put to be stored");
    for (const record of puts) assert.equal((await db.records.get(record.k))?.h, record.h, `${record.k} stored`);
    assert.equal(intake.inFlight, 0);
    link.terminate();
  });

  it("a put that carries a CRDT document's heads pays a message-rate token per signed record, so heads do not multiply a peer's signature checks", { timeout: T }, async () => {
    const clock = new ManualClock(Date.now());
    const db = await startServer({ topic: "weights-heads", clock, limits: { messageRate: 10, messageBurst: 64 } });
    nodes.push(db);
    const intake = db.network.guard.intake!;
    const [kept] = await signedRecords(1, "kept-before/", past());
    await db.records.merge(kept!);
    // 8 puts of 32 signed records each (one record and 31 heads): 256 checks for 8 messages.
    const records = await signedRecords(256, "heads/", past());
    const link = await RawLink.open(portOf(db), { topic: "weights-heads", from: "127.0.0.22" });
    await link.handshake();
    for (let i = 0; i < 8; i++) {
      const [top, ...heads] = records.slice(i * 32, i * 32 + 32);
      link.send({ type: "put", id: `heads-${i}`, to: [], data: { ...top!, heads } });
    }
    const stored = async () => (await Promise.all(records.map((r) => db.records.get(r.k)))).filter(Boolean).length;
    // 64 tokens and a clock that stands still: two puts of 32 go through, six wait (before: all 256 records, 4 × the budget).
    // (The intake pauses the socket while frames wait: some of the six wait in it, unread.)
    await waitUntil(async () => (await stored()) === 64 && intake.queuedFrames >= 1, T, "two puts stored, the rest waiting for tokens");
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    assert.equal(await stored(), 64);
    // Tokens come back with time, 10 a second: 3.2 s pay for one more put of 32 records.
    clock.advance(3_200);
    await waitUntil(async () => (await stored()) === 96, T, "one more put after 32 tokens");
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    assert.equal(await stored(), 96);
    assert.equal((await db.records.get(kept!.k))?.h, kept!.h, "what was stored before is intact");
    link.terminate();
  });
});
