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
});
