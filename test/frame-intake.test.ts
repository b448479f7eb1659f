/**
 * A reconciliation frame taken in as one batch (src/node/frame-intake.ts):
 * the same outcomes as records taken one by one. Duplicates are dropped
 * before their signature is checked, a key listed twice in a frame keeps
 * the newer version, a record older than what is stored is not stored, a
 * bad signature is refused with the records around it stored, a copy put
 * by a client while the frame is being checked is checked once, and a
 * client's newer put of a frame's key, merged while the frame holds the
 * key, wins. The frames come from a linked peer's real session.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb, type ToolDbRecord } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { DuplicateGate } from "../src/node/duplicate-gate.js";
import { signRecord } from "../src/node/record-signer.js";
import { VerifyResult } from "../src/records/verify-result.js";
import { closeAll, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords, testAuthor } from "./helpers/signed-records.js";
import { watchSignatureChecks } from "./helpers/signature-checks.js";

const T = 30_000;
const past = () => Date.now() - 1_000_000;

describe("a frame of records taken in as one batch", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  /** A server and the server's session of a linked client (the frame's sender). */
  async function serverAndPeer(topic: string): Promise<{ db: ToolDb; peer: PeerSession; client: ToolDb }> {
    const db = await startServer({ topic });
    const client = await startClient([db], { topic });
    nodes.push(db, client);
    await waitUntil(() => db.network.peers.length > 0, T, "the client to link");
    return { db, peer: db.network.peers[0]!, client };
  }

  it("drops stored copies before their signature check, keeps the newer of a key listed twice, and does not store an older record", { timeout: T }, async () => {
    const { db, peer } = await serverAndPeer("frame-outcomes");
    const author = await testAuthor();
    const t0 = past();
    const stored = await signedRecords(3, "frame/stored-", t0);
    await seed(db, stored);
    const older = await signRecord(author, "frame/newer-held", "old", t0, 0, false);
    const newer = await signRecord(author, "frame/newer-held", "new", t0 + 10, 0, false);
    await seed(db, [newer]);
    const twiceOld = await signRecord(author, "frame/twice", "first", t0, 0, false);
    const twiceNew = await signRecord(author, "frame/twice", "second", t0 + 10, 0, false);
    const fresh = await signedRecords(5, "frame/fresh-", t0);
    const checks = watchSignatureChecks(db);
    let accepted = 0;
    await db.acceptFrame([...stored.map((r) => ({ ...r })), older, twiceNew, ...fresh, twiceOld], peer, () => accepted++);
    assert.equal(checks.count, 2 + 5, "no check for the 3 stored copies nor for the older record (it loses whatever its signature); the key listed twice and the fresh ones are checked");
    assert.equal((db as unknown as { frameIntake: { losersDropped: number } }).frameIntake.losersDropped, 1, "the older record dropped unchecked");
    const held = await contents(db);
    for (const r of [...stored, ...fresh]) assert.equal(held.get(r.k), r.h);
    assert.equal(held.get("frame/newer-held"), newer.h, "an older record does not replace a newer one");
    assert.equal(held.get("frame/twice"), twiceNew.h, "of a key listed twice, the newer is kept whatever the order");
    assert.equal(accepted, 3 + 1 + 2 + 5, "every record that verified counts as taken in");
  });

  it("refuses a bad signature with a strike and stores the records around it", { timeout: T }, async () => {
    const { db, peer } = await serverAndPeer("frame-bad");
    const records = await signedRecords(50, "frame/bad-", past());
    const [other] = await signedRecords(1, "frame/other-", past());
    const bad = { ...records[25]!, s: other!.s };
    const refused: RefusalEvent[] = [];
    db.on("refused", (e) => refused.push(e));
    await db.acceptFrame([...records.slice(0, 25), bad, ...records.slice(26)], peer, () => undefined);
    const held = await contents(db);
    assert.equal(held.size, 49);
    assert.equal(held.has(bad.k), false);
    assert.ok(refused.some((e) => e.code === ErrorCode.RECORD_REFUSED && e.key === bad.k && e.reason.includes(VerifyResult.InvalidSignature)));
  });

  it("a copy waiting on a record a failed batch let go unchecked is verified and stored on its own", { timeout: T }, async () => {
    const { db, peer } = await serverAndPeer("frame-abandon");
    const [record] = await signedRecords(1, "frame/abandon-", past());
    const gate = (db as unknown as { intake: { gate: DuplicateGate } }).intake.gate;
    const claim = gate.claim(record!)!;
    const checks = watchSignatureChecks(db);
    const copy = db.acceptRecord({ ...record! }, peer);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(checks.count, 0, "the copy waits on the claim");
    claim.abandon();
    assert.equal((await copy)?.h, record!.h);
    assert.equal(checks.count, 1);
    assert.equal((await contents(db)).get(record!.k), record!.h);
  });

  it("a copy waiting on a record admitted and then let go unmerged (a client shedding its sender's records) is verified and stored on its own; the key read ahead is released", { timeout: T }, async () => {
    const { db, peer } = await serverAndPeer("admission-abandon");
    const [record] = await signedRecords(1, "frame/let-go-", past());
    const gate = (db as unknown as { intake: { gate: DuplicateGate } }).intake.gate;
    const watched = (db.records as unknown as { watched: Map<string, unknown> }).watched;
    const admission = gate.admit(record!);
    assert.equal((await admission.checked).duplicate, false);
    assert.equal(watched.has(record!.k), true, "the key is read ahead for the merge");
    const checks = watchSignatureChecks(db);
    const copy = db.acceptRecord({ ...record! }, peer);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(checks.count, 0, "the copy waits on the first");
    admission.abandon();
    assert.equal((await copy)?.h, record!.h);
    assert.equal(checks.count, 1, "checked on its own");
    assert.equal((await contents(db)).get(record!.k), record!.h);
    assert.equal(watched.has(record!.k), false, "every read ahead released");
  });

  it("a client's copy of a frame's record, put while the frame is checked, is checked once; a newer put of a frame's key wins", { timeout: T }, async () => {
    const { db, peer, client } = await serverAndPeer("frame-concurrent");
    const author = await testAuthor();
    const t0 = past();
    const frame = await signedRecords(20, "frame/conc-", t0);
    const newer = await signRecord(author, frame[1]!.k, "newer", t0 + 1_000, 0, false);
    const checks = watchSignatureChecks(db);
    let release!: () => void;
    checks.hold = new Promise<void>((resolve) => (release = resolve));
    const taking = db.acceptFrame(frame, peer, () => undefined);
    await waitUntil(() => checks.count >= frame.length, T, "the frame's signature checks to start");
    // While the frame's checks are held back: a copy of one of its records, and a newer version of another.
    const copy = db.acceptRecord({ ...frame[0]! }, peer);
    const later = db.acceptRecord(newer, peer);
    await waitUntil(() => checks.count >= frame.length + 1, T, "the newer put's check to start");
    release();
    await taking;
    assert.equal((await copy)?.h, frame[0]!.h);
    assert.equal((await later)?.h, newer.h);
    assert.equal(checks.count, frame.length + 1, "the copy waited on the frame's check of it; only the newer record was checked");
    const held = await contents(db);
    assert.equal(held.get(frame[1]!.k), newer.h, "the newer put, merged after the frame, wins");
    assert.equal(held.get(frame[0]!.k), frame[0]!.h);
    void client;
  });
});
