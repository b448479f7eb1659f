/**
 * Bad records on the wire: a raw `ws` client puts forged, misattributed or
 * malformed records to a ToolDb server on 127.0.0.1 (bad frames and
 * handshakes: bad-input.test.ts). Each is refused with a reason that names
 * the problem, the record stored before the attack keeps its value, the
 * server keeps serving, and strikes drop the link past 10.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../src/base/errors.js";
import { boundRecordHash, type ToolDbRecord } from "../src/records/record.js";
import { signRecord } from "../src/node/record-signer.js";
import { CloseCode } from "../src/network/connection.js";
import { until } from "./helpers/wait.js";
import { portOf } from "./helpers/nodes.js";
import { rawIdentity as identity } from "./helpers/raw-peer.js";
import { RawPeer, T, badInputServer } from "./helpers/bad-input-server.js";

describe("bad input from a raw ws client", () => {
  const fx = badInputServer();
  const { watchRefusals, refusal, assertIntact } = fx;

  describe("bad records are refused and do not touch the store", () => {
    it("forged record: value changed under a valid signature", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidHashNonce/);
      peer.put({ ...fx.precious, v: "hacked" });
      const event = await refused;
      assert.equal(event.key, "precious");
      assert.equal(event.peer, peer.id.clientId);
      await assertIntact();
    });

    it("forged record: timestamp changed under a valid signature", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidHashNonce/);
      peer.put({ ...fx.precious, t: fx.precious.t + 1000 });
      await refused;
      await assertIntact();
    });

    it("forged record: value changed and hash recomputed, signature no longer matches", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      const t = fx.precious.t + 1000;
      const h = boundRecordHash("precious", "hacked", fx.precious.a, t, 0);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidSignature/);
      peer.put({ ...fx.precious, v: "hacked", t, n: 0, h });
      await refused;
      await assertIntact();
    });

    it("a record replayed under another key", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      // A newer, validly signed record of the same author, for another key.
      const other = await signRecord(fx.srv.userAccount, "harmless", "hacked", Date.now() + 1000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidHashNonce|KeyNotBound/);
      peer.put({ ...other, k: "precious" });
      const event = await refused;
      assert.equal(event.key, "precious");
      await assertIntact();
    });

    it("author `a` that is not an address", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      const a = "garbage!";
      const t = Date.now();
      const h = boundRecordHash("precious", "hacked", a, t, 0);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidData.*P-256/);
      peer.put({ k: "precious", a, n: 0, t, h, s: "0".repeat(128), v: "hacked", c: null });
      await refused;
      await assertIntact();
    });

    it("author `a` of 86 chars that is not a curve point", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      const attacker = await identity();
      const real = attacker.address;
      // Change one character inside y: a well-formed string, but not a point on P-256.
      const a = real.slice(0, 60) + (real[60] === "A" ? "B" : "A") + real.slice(61);
      assert.equal(a.length, 86);
      const t = Date.now();
      const h = boundRecordHash("precious", "hacked", a, t, 0);
      const s = await attacker.user.signData(h);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidSignature/);
      peer.put({ k: "precious", a, n: 0, t, h, s, v: "hacked", c: null });
      await refused;
      await assertIntact();
    });

    it("a `:<address>.` key written by another address", async () => {
      const owned = (await fx.srv.putData("profile", "mine", true)).data as ToolDbRecord;
      assert.ok(owned.k.startsWith(`:${fx.srv.userAccount.getAddress()}.`));
      const peer = await RawPeer.connect(portOf(fx.srv));
      const forged = await signRecord(peer.id.user, owned.k, "hijacked", Date.now() + 1000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /AddressMismatch/);
      peer.put(forged);
      assert.equal((await refused).key, owned.k);
      assert.deepEqual(await fx.srv.records.get(owned.k), owned);
      await assertIntact();
    });

    it("an `==` account key overwritten by another author", async () => {
      await fx.srv.signUp("alice", "correct horse");
      const account = (await fx.srv.records.get("==alice"))!;
      assert.ok(account);
      const peer = await RawPeer.connect(portOf(fx.srv));
      const takeover = await signRecord(peer.id.user, "==alice", { name: "alice", keys: "attacker", iv: "x" }, Date.now() + 1000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /CantOverwrite/);
      peer.put(takeover);
      // The server answers the sender with the record it keeps.
      const answer = await peer.next((f) => f.type === "put" && (f.data as ToolDbRecord)?.k === "==alice");
      assert.deepEqual(answer.data, account);
      assert.deepEqual(await fx.srv.records.get("==alice"), account, "the first writer keeps the name");
      await refused;
      await assertIntact();
    });

    it("a timestamp 60 s in the future", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      // Validly signed by the legitimate author, but dated ahead to win every later merge.
      const ahead = await signRecord(fx.srv.userAccount, "precious", "from the future", Date.now() + 60_000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidTimestamp/);
      peer.put(ahead);
      await refused;
      await assertIntact();
    });

    it("a CRDT record whose value is not a change list is refused", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidData: a MAP record's value must be a change list/);
      peer.put({ ...fx.precious, c: "MAP" });
      await refused;
      await assertIntact();
    });

    it("11 bad records drop the link (too many strikes)", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      watchRefusals();
      const dropped = refusal(ErrorCode.RECORD_REFUSED, /too many invalid messages/);
      for (let i = 0; i < 11; i++) peer.put({ ...fx.precious, v: `hacked-${i}` });
      const [closed] = await Promise.all([peer.waitClose(), dropped]);
      assert.equal(closed.code, CloseCode.TOO_MANY_STRIKES);
      const fromPeer = fx.refusals!.events.filter(([e]) => e.code === ErrorCode.RECORD_REFUSED);
      assert.ok(fromPeer.length >= 11, `refusals: ${fromPeer.length}`);
      assert.equal(fx.srv.network.session(peer.id.clientId), undefined);
      await assertIntact();
    });

    it("10 bad records are tolerated (strikes are counted, not fatal)", async () => {
      const peer = await RawPeer.connect(portOf(fx.srv));
      watchRefusals();
      for (let i = 0; i < 10; i++) peer.put({ ...fx.precious, v: `hacked-${i}` });
      await until(() => fx.refusals!.events.length >= 10, [[fx.srv, "refused"]], T, "10 refusals");
      assert.deepEqual(await peer.get("precious"), fx.precious, "link still open");
      assert.equal(peer.isClosed, false);
      await assertIntact();
    });
  });
});
