/**
 * The way records come in (src/node/duplicate-gate.ts, record-intake.ts,
 * crypto/verify-pool.ts): duplicates are dropped before their signature is
 * checked, a bad signature in the middle of a batch is refused without
 * losing the good records around it, and puts from one link keep their
 * order per key while their signatures are checked on other threads.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb, type ToolDbRecord } from "../src/index.js";
import { verifyPoolStats } from "../src/crypto/ecdsa.js";
import { VerifyResult } from "../src/records/verify-result.js";
import { closeAll, linkServers, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords, testAuthor } from "./helpers/signed-records.js";
import { signRecord } from "../src/node/record-signer.js";

const T = 60_000;
const past = () => Date.now() - 1_000_000;

/** Counts the signature checks `db` asks for (the one costly step of verification). */
function countSignatureChecks(db: ToolDb): { count: number } {
  const counter = { count: 0 };
  const verifier = db.verifier;
  const original = verifier.verifySigned.bind(verifier);
  verifier.verifySigned = (record, prepared) => {
    counter.count++;
    return original(record, prepared);
  };
  return counter;
}

/** Another signature of the same hash by another key: well-formed, and wrong for the record's author. */
async function wrongSignature(record: ToolDbRecord): Promise<ToolDbRecord> {
  const [other] = await signedRecords(1, "other/", past());
  return { ...record, s: other!.s };
}

describe("record intake pipeline", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));
  const server = async () => {
    const db = await startServer({ topic: "pipeline", handshakeTimeout: 30_000 });
    nodes.push(db);
    return db;
  };

  it("drops copies already stored or in flight before checking their signature; each resolves to the stored record", { timeout: T }, async () => {
    const db = await server();
    const checks = countSignatureChecks(db);
    const [record] = await signedRecords(1, "dup/", past());
    const copies = await Promise.all([db.acceptRecord(record), db.acceptRecord({ ...record! }), db.acceptRecord({ ...record! })]);
    assert.equal(checks.count, 1, "three copies in flight: one signature check");
    for (const winner of copies) assert.equal(winner?.h, record!.h);
    assert.equal((await db.acceptRecord({ ...record! }))?.h, record!.h);
    assert.equal(checks.count, 1, "a copy of a stored record: no signature check");
    // Same key and hash, another signature: the data is what is stored, so it is dropped too.
    assert.equal((await db.acceptRecord(await wrongSignature(record!)))?.h, record!.h);
    assert.equal(checks.count, 1);
    assert.deepEqual(await db.records.get(record!.k), record);
    // A changed value under the stored hash is no copy: refused by the recomputed hash, no signature check.
    const refused: RefusalEvent[] = [];
    db.on("refused", (e) => refused.push(e));
    assert.equal(await db.acceptRecord({ ...record!, v: "forged" }), undefined);
    assert.equal(checks.count, 1);
    assert.match(refused[0]?.reason ?? "", new RegExp(VerifyResult.InvalidHashNonce));
    assert.deepEqual(await db.records.get(record!.k), record);
  });

  it("a forged copy sent ahead of the real record does not make the real one lost", { timeout: T }, async () => {
    const db = await server();
    const checks = countSignatureChecks(db);
    const [record] = await signedRecords(1, "race/", past());
    const forged = await wrongSignature(record!);
    const [first, second] = await Promise.all([db.acceptRecord(forged), db.acceptRecord(record)]);
    assert.equal(first, undefined, "the forged copy is refused");
    assert.equal(second?.h, record!.h, "the real copy, which waited on it, is verified and stored");
    assert.equal(checks.count, 2);
    assert.deepEqual(await db.records.get(record!.k), record);
  });

  it("a catch-up refuses a bad signature in the middle of a batch and keeps every good record around it", { timeout: T }, async () => {
    const [a, b] = [await server(), await server()];
    const records = await signedRecords(600, "batch/", past());
    const bad = await wrongSignature(records[300]!);
    // Stored on a without verification, as a store written by a faulty peer could hold it.
    await seed(a, [...records.slice(0, 300), bad, ...records.slice(301)]);
    const refused: RefusalEvent[] = [];
    b.on("refused", (e) => refused.push(e));
    const threadChecks = verifyPoolStats()?.verified ?? 0;
    const done = new Promise((resolve) => b.sync.range!.once("done", resolve));
    await linkServers(b, a, T);
    await done;
    const held = await contents(b);
    assert.equal(held.size, 599, "every good record arrived");
    assert.equal(held.has(bad.k), false, "the bad one did not");
    for (const r of [...records.slice(0, 300), ...records.slice(301)]) assert.equal(held.get(r.k), r.h);
    assert.ok(refused.some((e) => e.code === ErrorCode.RECORD_REFUSED && e.key === bad.k && e.reason.includes(VerifyResult.InvalidSignature)));
    const stats = verifyPoolStats();
    if (stats) assert.ok(stats.verified - threadChecks >= 600, "the signatures were checked by the verification threads");
  });

  it("puts from one link are merged in order per key while their signatures are checked in parallel", { timeout: T }, async () => {
    const srv = await server();
    const writer = await startClient([srv], { topic: "pipeline" });
    nodes.push(writer);
    const keys = 5;
    const perKey = 200;
    const author = await testAuthor();
    const t0 = past();
    // Put n goes to key n % keys, each newer than the one before: interleaved over the keys.
    const order = await Promise.all(Array.from({ length: keys * perKey }, (_, n) => signRecord(author, `order/${n % keys}`, { n }, t0 + n, 0, false)));
    const seen = new Map<string, number[]>();
    srv.on("put", ({ data: record }) => {
      const list = seen.get(record.k) ?? [];
      list.push(record.t);
      seen.set(record.k, list);
    });
    // All sent at once over one link.
    for (const [i, r] of order.entries()) writer.network.sendToAll({ type: "put", id: `order-${i}`, data: r });
    await waitUntil(() => [...seen.values()].reduce((sum, l) => sum + l.length, 0) >= keys * perKey, T, "every put merged");
    for (const [key, times] of seen) {
      assert.equal(times.length, perKey, `${key}: every put changed the store (none arrived after a newer one)`);
      for (let i = 1; i < times.length; i++) assert.ok(times[i]! > times[i - 1]!, `${key}: put ${i} after put ${i - 1}`);
    }
  });
});
