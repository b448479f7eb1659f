import assert from "node:assert/strict";
import { describe, it, before } from "node:test";
import {
  EcdsaUser,
  RecordVerifier,
  VerifyResult,
  boundRecordHash,
  incomingWins,
  legacyRecordHash,
  signRecord,
  type ToolDbRecord,
} from "../src/index.js";
import { sha256Hex, sha256HexPortable } from "../src/crypto/sha256.js";

const NOW = 1_700_000_000_000;

function verifier(opts: { pow?: number; legacy?: boolean } = {}) {
  const user = new EcdsaUser();
  return new RecordVerifier({
    pow: opts.pow ?? 0,
    acceptLegacyRecords: opts.legacy ?? false,
    verifySignature: (m) => user.verifySignature(m),
    now: () => NOW,
  });
}

describe("sha256Hex", () => {
  it("on Node (OpenSSL) equals the portable @noble/hashes result browsers use, for any string", () => {
    const inputs = ["", "abc", "é", "🎉 astral", "lone \ud800 surrogate", "\u0000", "x".repeat(100_000), JSON.stringify({ k: "rec/1", v: [1, "ü"] })];
    for (const input of inputs) assert.equal(sha256Hex(input), sha256HexPortable(input), JSON.stringify(input.slice(0, 20)));
    assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("record verification", () => {
  let alice: EcdsaUser;
  let mallory: EcdsaUser;
  let good: ToolDbRecord;

  before(async () => {
    alice = new EcdsaUser();
    mallory = new EcdsaUser();
    await Promise.all([alice.ready, mallory.ready]);
    good = await signRecord(alice, "greeting", { text: "hello" }, NOW, 0, false);
  });

  it("accepts a record signed by its author", async () => {
    assert.equal((await verifier().verify(good)).result, VerifyResult.Verified);
  });

  it("refuses a changed value under the original signature (forgery at pow 0)", async () => {
    const forged = { ...good, v: { text: "pwned" } };
    assert.equal((await verifier().verify(forged)).result, VerifyResult.InvalidHashNonce);
  });

  it("refuses a changed timestamp under the original signature", async () => {
    const forged = { ...good, t: good.t + 1000 };
    assert.equal((await verifier().verify(forged)).result, VerifyResult.InvalidHashNonce);
  });

  it("refuses a record replayed under another key, in strict and in legacy mode", async () => {
    const replayed = { ...good, k: "other-key" };
    assert.equal((await verifier().verify(replayed)).result, VerifyResult.InvalidHashNonce);
    assert.equal((await verifier({ legacy: true }).verify(replayed)).result, VerifyResult.InvalidHashNonce);
  });

  it("refuses a forged hash re-signed by someone else (signature is the author's)", async () => {
    const h = boundRecordHash(good.k, { text: "pwned" }, good.a, good.t, good.n);
    const forged = { ...good, v: { text: "pwned" }, h, s: await mallory.signData(h) };
    assert.equal((await verifier().verify(forged)).result, VerifyResult.InvalidSignature);
  });

  it("refuses timestamps more than 30 s in the future and accepts 29 s", async () => {
    const future = await signRecord(alice, "k", 1, NOW + 31_000, 0, false);
    assert.equal((await verifier().verify(future)).result, VerifyResult.InvalidTimestamp);
    const nearFuture = await signRecord(alice, "k", 1, NOW + 29_000, 0, false);
    assert.equal((await verifier().verify(nearFuture)).result, VerifyResult.Verified);
  });

  it("lets only the owner write a :<address>. key", async () => {
    const own = await signRecord(alice, `:${alice.getAddress()}.profile`, { name: "alice" }, NOW, 0, false);
    assert.equal((await verifier().verify(own)).result, VerifyResult.Verified);
    const intruder = await signRecord(mallory, `:${alice.getAddress()}.profile`, { name: "mallory" }, NOW, 0, false);
    assert.equal((await verifier().verify(intruder)).result, VerifyResult.AddressMismatch);
  });

  it("refuses bad public keys without throwing", async () => {
    const garbage = { ...good, a: "not-a-key" };
    assert.equal((await verifier().verify(garbage)).result, VerifyResult.InvalidData);
    const notOnCurve = { ...good, a: "A".repeat(86) };
    const h = boundRecordHash(good.k, good.v, notOnCurve.a, good.t, good.n);
    assert.equal((await verifier().verify({ ...notOnCurve, h })).result, VerifyResult.InvalidSignature);
  });

  it("refuses wrong field types and missing fields", async () => {
    const v = verifier();
    for (const bad of [null, [], "x", { ...good, t: "1" }, { ...good, n: -1 }, { ...good, k: 5 }, { ...good, h: "zz" }, { ...good, s: 12 }, { ...good, v: undefined }]) {
      assert.equal((await v.verify(bad)).result, VerifyResult.InvalidData, JSON.stringify(bad));
    }
    const noKey: Record<string, unknown> = { ...good };
    delete noKey.k;
    assert.equal((await v.verify(noKey)).result, VerifyResult.InvalidData);
  });

  it("checks proof of work when pow is set", async () => {
    let lazy = good;
    for (let t = NOW; lazy.h.startsWith("00"); t++) lazy = await signRecord(alice, "greeting", "x", t, 0, false);
    assert.equal((await verifier({ pow: 2 }).verify(lazy)).result, VerifyResult.NoProofOfWork);
    const worked = await signRecord(alice, "pow-key", "v", NOW, 2, false);
    assert.ok(worked.h.startsWith("00"));
    assert.equal((await verifier({ pow: 2 }).verify(worked)).result, VerifyResult.Verified);
  });

  it("refuses tool-db 2.6.6 records (key not bound) unless legacyRecords is on", async () => {
    const legacy = await signRecord(alice, "legacy", "v", NOW, 0, true);
    assert.equal(legacy.h, legacyRecordHash("v", legacy.a, legacy.t, legacy.n));
    assert.equal((await verifier().verify(legacy)).result, VerifyResult.KeyNotBound);
    assert.equal((await verifier({ legacy: true }).verify(legacy)).result, VerifyResult.Verified);
  });
});

describe("conflict resolution", () => {
  const rec = (over: Partial<ToolDbRecord>): ToolDbRecord => ({ k: "key", a: "A", n: 0, t: 1, h: "1", s: "", v: null, c: null, ...over });

  it("last writer wins by timestamp", () => {
    assert.equal(incomingWins(rec({ t: 1, h: "a" }), rec({ t: 2, h: "b" })), true);
    assert.equal(incomingWins(rec({ t: 2, h: "a" }), rec({ t: 1, h: "b" })), false);
  });

  it("breaks timestamp ties by hash, the same way in both directions", () => {
    const x = rec({ t: 5, h: "aaaa" });
    const y = rec({ t: 5, h: "bbbb" });
    assert.equal(incomingWins(x, y), true);
    assert.equal(incomingWins(y, x), false);
  });

  it("keeps the oldest record of an == key (a sign-up): a later one never replaces it, even by its author; ties by address, then hash", () => {
    const stored = rec({ k: "==alice", a: "B", t: 10, h: "b" });
    assert.equal(incomingWins(stored, rec({ k: "==alice", a: "M", t: 1, h: "c" })), true, "older wins");
    assert.equal(incomingWins(stored, rec({ k: "==alice", a: "M", t: 20, h: "c" })), false, "later loses");
    assert.equal(incomingWins(stored, rec({ k: "==alice", a: "B", t: 20, h: "d" })), false, "later by the same author loses");
    assert.equal(incomingWins(stored, rec({ k: "==alice", a: "A", t: 10, h: "z" })), true, "same time, lower address");
    assert.equal(incomingWins(stored, rec({ k: "==alice", a: "C", t: 10, h: "a" })), false, "same time, higher address");
    assert.equal(incomingWins(stored, rec({ k: "==alice", a: "B", t: 10, h: "a" })), true, "same time and author, lower hash");
    const other = rec({ k: "==alice", a: "A", t: 10, h: "z" });
    assert.notEqual(incomingWins(stored, other), incomingWins(other, stored), "the same answer in both directions");
  });
});
