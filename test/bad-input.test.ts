/**
 * Hostile input on the wire: a raw `ws` client talking to a ToolDb server on
 * 127.0.0.1. For every attack the server must
 *   - emit `refused` with a code and a reason that names the problem,
 *   - not crash (no unhandled rejection: a process-wide guard fails the test),
 *   - keep a record it stored before the attack, with its original value,
 *   - keep serving other peers.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb } from "../src/index.js";
import type { ToolDbOptions } from "../src/node/options.js";
import { ErrorCode } from "../src/base/errors.js";
import { PEER_RECORD_MAX_AGE_MS, clientIdOf, signPeerRecord } from "../src/records/peer-record.js";
import { randomId } from "../src/base/random.js";
import { boundRecordHash, type ToolDbRecord } from "../src/records/record.js";
import { signRecord } from "../src/node/record-signer.js";
import { CloseCode } from "../src/network/connection.js";
import type { RefusalEvent } from "../src/network/network-adapter.js";
import { record, until, waitFor, withTimeout } from "./helpers/wait.js";
import { portOf, startServer as startNodeServer } from "./helpers/nodes.js";
import { type Frame, RawLink, openRawLinks, rawIdentity as identity } from "./helpers/raw-peer.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const TOPIC = "bad-input";
const T = 5000;

// ---- crash guard -------------------------------------------------------------

const unhandled = collectUnhandledRejections();

// ---- fixtures ------------------------------------------------------------------

function startServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  return startNodeServer({ topic: TOPIC, ...opts });
}

/** Raw peers of this file: on TOPIC, from 127.0.0.1. */
const RawPeer = {
  open: (port: number) => RawLink.open(port, { topic: TOPIC }),
  connect: (port: number) => RawLink.connect(port, { topic: TOPIC }),
};
const open = openRawLinks;

// ---- the tests -------------------------------------------------------------------

describe("bad input from a raw ws client", () => {
  let srv: ToolDb;
  let precious: ToolDbRecord;
  let refusals: { events: Array<[RefusalEvent]>; stop(): void };

  before(async () => {
    srv = await startServer({ maxMessageBytes: 64 * 1024 });
    await srv.putData("precious", "original");
    precious = (await srv.records.get("precious"))!;
    assert.equal(precious.v, "original");
  });

  after(async () => {
    await withTimeout(srv.close(), T, "server close");
  });

  afterEach(async () => {
    refusals?.stop();
    for (const p of open) p.terminate();
    open.clear();
    assert.deepEqual(unhandled.splice(0), [], "unhandled rejections during the test");
  });

  /** Starts recording refusals; call before the attack. */
  function watchRefusals(): void {
    refusals = record<[RefusalEvent]>(srv, "refused");
  }

  /** Waits for a refusal with `code` whose reason matches `reason`. */
  function refusal(code: ErrorCode, reason: RegExp): Promise<RefusalEvent> {
    return waitFor(srv, "refused", T, (e) => e.code === code && reason.test(e.reason)).then(([e]) => e);
  }

  /** The record stored before the attacks is unchanged, and a fresh peer is served. */
  async function assertIntact(): Promise<void> {
    assert.deepEqual(await srv.records.get("precious"), precious, "stored record changed");
    const probe = await RawPeer.connect(portOf(srv));
    const got = await probe.get("precious");
    assert.deepEqual(got, precious);
    probe.terminate();
  }

  // -- frames -------------------------------------------------------------------

  it("malformed JSON closes the link with 4000; the server stays up", async () => {
    const peer = await RawPeer.connect(portOf(srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /malformed JSON/);
    peer.send('{"type":"get","id":');
    const [closed, event] = await Promise.all([peer.waitClose(), refused]);
    assert.equal(closed.code, CloseCode.BAD_MESSAGE);
    assert.match(closed.reason, /malformed JSON/);
    assert.equal(event.peer, peer.id.clientId);
    await assertIntact();
  });

  it("malformed JSON before the handshake closes the link with 4000", async () => {
    const peer = await RawPeer.open(portOf(srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /malformed JSON/);
    peer.send("not json at all");
    const [closed] = await Promise.all([peer.waitClose(), refused]);
    assert.equal(closed.code, CloseCode.BAD_MESSAGE);
    await assertIntact();
  });

  it("an unknown message type is refused and the link stays usable", async () => {
    const peer = await RawPeer.connect(portOf(srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /unknown message type/);
    peer.send({ type: "teleport", id: randomId(), to: [] });
    const event = await refused;
    assert.equal(event.peer, peer.id.clientId);
    assert.deepEqual(await peer.get("precious"), precious, "same link still answers");
    assert.equal(peer.isClosed, false);
    await assertIntact();
  });

  describe("wrong field types are refused, the link stays usable", () => {
    const cases: Array<[string, Frame, RegExp]> = [
      ["key: 5", { type: "get", id: randomId(), to: [], key: 5 }, /field key must be a string/],
      ['to: "x"', { type: "get", id: randomId(), to: "x", key: "precious" }, /field to must be an array/],
      ["data: []", { type: "put", id: randomId(), to: [], data: [] }, /put\.data must be a record object/],
      ["id: {}", { type: "get", id: {} as unknown as string, to: [], key: "precious" }, /field id must be a string/],
      ["type: 7", { type: 7, id: randomId(), to: [] } as unknown as Frame, /field type must be a string/],
      ["a JSON array", [1, 2, 3] as unknown as Frame, /must be a JSON object/],
    ];
    for (const [name, frame, reason] of cases) {
      it(name, async () => {
        const peer = await RawPeer.connect(portOf(srv));
        const refused = refusal(ErrorCode.BAD_MESSAGE, reason);
        peer.send(frame);
        assert.equal((await refused).peer, peer.id.clientId);
        assert.deepEqual(await peer.get("precious"), precious);
        await assertIntact();
      });
    }
  });

  it("an oversized frame closes the link (1009) and is reported as refused", async () => {
    const peer = await RawPeer.connect(portOf(srv));
    const refused = refusal(ErrorCode.FRAME_TOO_LARGE, /too large/i);
    const closed = peer.waitClose();
    peer.send({ type: "put", id: randomId(), to: [], data: { ...precious, v: "x".repeat(100 * 1024) } });
    assert.equal((await closed).code, CloseCode.TOO_LARGE);
    await refused;
    await assertIntact();
  });

  it("a binary frame is refused like malformed JSON (4000)", async () => {
    const peer = await RawPeer.connect(portOf(srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /malformed JSON/);
    peer.ws.send(Buffer.from(JSON.stringify({ type: "get", id: randomId(), to: [], key: "precious" })), { binary: true });
    const [closed] = await Promise.all([peer.waitClose(), refused]);
    assert.equal(closed.code, CloseCode.BAD_MESSAGE);
    await assertIntact();
  });

  it("a deeply nested value (20,000 levels) is refused without blowing the stack", async (t) => {
    const peer = await RawPeer.connect(portOf(srv));
    const depth = 20_000;
    const v = "[".repeat(depth) + "]".repeat(depth);
    const frame = `{"type":"put","id":"${randomId()}","to":[],"data":{"k":"precious","a":"${precious.a}","n":0,"t":${Date.now()},"h":"${precious.h}","s":"${precious.s}","c":null,"v":${v}}}`;
    const refused = waitFor(srv, "refused", T, (e) => e.code === ErrorCode.RECORD_REFUSED || e.code === ErrorCode.BAD_MESSAGE);
    peer.send(frame);
    const [event] = await refused;
    t.diagnostic(`refused: ${event.code} ${event.reason}`);
    assert.ok(event.reason.length > 0);
    await assertIntact();
  });

  // -- handshake -------------------------------------------------------------------

  describe("a bad ping closes the link before any session", () => {
    it("no ping at all: the handshake times out (4005)", async () => {
      const slow = await startServer({ handshakeTimeout: 100 });
      try {
        const peer = await RawPeer.open(portOf(slow));
        const refused = waitFor(slow, "refused", T, (e) => e.code === ErrorCode.HANDSHAKE_TIMEOUT);
        const [closed, [event]] = await Promise.all([peer.waitClose(), refused]);
        assert.equal(closed.code, CloseCode.HANDSHAKE_TIMEOUT);
        assert.match(event.reason, /handshake timeout/);
        assert.equal(slow.network.peers.length, 0);
      } finally {
        await slow.close();
      }
      await assertIntact();
    });

    it("forged signature", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const ping = await peer.ping();
      const sig = ping.peer.sig;
      ping.peer.sig = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
      const refused = refusal(ErrorCode.BAD_PEER, /signature/);
      peer.send(ping);
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.BAD_PEER);
      assert.equal(srv.network.session(peer.id.clientId), undefined);
      await assertIntact();
    });

    it("a record signed by another key than its address", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const other = await identity();
      const ping = await peer.ping();
      const forged = await signPeerRecord(other.user, TOPIC, "127.0.0.1", 0, ping.peer.timestamp);
      ping.peer.sig = forged.sig; // valid signature, wrong signer
      const refused = refusal(ErrorCode.BAD_PEER, /signature/);
      peer.send(ping);
      assert.equal((await peer.waitClose()).code, CloseCode.BAD_PEER);
      await refused;
      await assertIntact();
    });

    it("wrong topic", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const refused = refusal(ErrorCode.TOPIC_MISMATCH, /topic mismatch/);
      peer.send(await peer.ping({ topic: "someone-elses-topic" }));
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.TOPIC_MISMATCH);
      assert.match(closed.reason, /topic mismatch/);
      await assertIntact();
    });

    it("stale timestamp", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const refused = refusal(ErrorCode.BAD_PEER, /stale/);
      peer.send(await peer.ping({ timestamp: Date.now() - PEER_RECORD_MAX_AGE_MS - 60_000 }));
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.BAD_PEER);
      await assertIntact();
    });

    it("timestamp in the future", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const refused = refusal(ErrorCode.BAD_PEER, /future/);
      peer.send(await peer.ping({ timestamp: Date.now() + 10 * 60_000 }));
      assert.equal((await peer.waitClose()).code, CloseCode.BAD_PEER);
      await refused;
      await assertIntact();
    });

    it("clientId not matching the address", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const victim = clientIdOf(srv.nodeAddress()); // claim to be someone else
      const refused = refusal(ErrorCode.BAD_PEER, /client id does not match/);
      peer.send(await peer.ping({ clientId: victim }));
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.BAD_PEER);
      await assertIntact();
    });

    it("the server's own identity replayed back (self)", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const own = await srv.localPeerRecord();
      const clientId = clientIdOf(own.address);
      const refused = refusal(ErrorCode.BAD_PEER, /self/);
      peer.send({ type: "ping", id: randomId(), to: [clientId], clientId, isServer: true, peer: own });
      assert.equal((await peer.waitClose()).code, CloseCode.SELF);
      await refused;
      await assertIntact();
    });

    it("a message other than ping before the handshake is refused", async () => {
      const peer = await RawPeer.open(portOf(srv));
      const refused = refusal(ErrorCode.BAD_MESSAGE, /before handshake/);
      peer.send({ type: "put", id: randomId(), to: [], data: precious });
      await refused;
      assert.equal(srv.network.session(peer.id.clientId), undefined);
      await assertIntact();
    });
  });

  // -- records -------------------------------------------------------------------

  describe("bad records are refused and do not touch the store", () => {
    it("forged record: value changed under a valid signature", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidHashNonce/);
      peer.put({ ...precious, v: "hacked" });
      const event = await refused;
      assert.equal(event.key, "precious");
      assert.equal(event.peer, peer.id.clientId);
      await assertIntact();
    });

    it("forged record: timestamp changed under a valid signature", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidHashNonce/);
      peer.put({ ...precious, t: precious.t + 1000 });
      await refused;
      await assertIntact();
    });

    it("forged record: value changed and hash recomputed, signature no longer matches", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      const t = precious.t + 1000;
      const h = boundRecordHash("precious", "hacked", precious.a, t, 0);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidSignature/);
      peer.put({ ...precious, v: "hacked", t, n: 0, h });
      await refused;
      await assertIntact();
    });

    it("a record replayed under another key", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      // A newer, validly signed record of the same author, for another key.
      const other = await signRecord(srv.userAccount, "harmless", "hacked", Date.now() + 1000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidHashNonce|KeyNotBound/);
      peer.put({ ...other, k: "precious" });
      const event = await refused;
      assert.equal(event.key, "precious");
      await assertIntact();
    });

    it("author `a` that is not an address", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      const a = "garbage!";
      const t = Date.now();
      const h = boundRecordHash("precious", "hacked", a, t, 0);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidData.*P-256/);
      peer.put({ k: "precious", a, n: 0, t, h, s: "0".repeat(128), v: "hacked", c: null });
      await refused;
      await assertIntact();
    });

    it("author `a` of 86 chars that is not a curve point", async () => {
      const peer = await RawPeer.connect(portOf(srv));
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
      const owned = (await srv.putData("profile", "mine", true)).data as ToolDbRecord;
      assert.ok(owned.k.startsWith(`:${srv.userAccount.getAddress()}.`));
      const peer = await RawPeer.connect(portOf(srv));
      const forged = await signRecord(peer.id.user, owned.k, "hijacked", Date.now() + 1000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /AddressMismatch/);
      peer.put(forged);
      assert.equal((await refused).key, owned.k);
      assert.deepEqual(await srv.records.get(owned.k), owned);
      await assertIntact();
    });

    it("an `==` account key overwritten by another author", async () => {
      await srv.signUp("alice", "correct horse");
      const account = (await srv.records.get("==alice"))!;
      assert.ok(account);
      const peer = await RawPeer.connect(portOf(srv));
      const takeover = await signRecord(peer.id.user, "==alice", { name: "alice", keys: "attacker", iv: "x" }, Date.now() + 1000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /CantOverwrite/);
      peer.put(takeover);
      // The server answers the sender with the record it keeps.
      const answer = await peer.next((f) => f.type === "put" && (f.data as ToolDbRecord)?.k === "==alice");
      assert.deepEqual(answer.data, account);
      assert.deepEqual(await srv.records.get("==alice"), account, "the first writer keeps the name");
      await refused;
      await assertIntact();
    });

    it("a timestamp 60 s in the future", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      // Validly signed by the legitimate author, but dated ahead to win every later merge.
      const ahead = await signRecord(srv.userAccount, "precious", "from the future", Date.now() + 60_000, 0, false);
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidTimestamp/);
      peer.put(ahead);
      await refused;
      await assertIntact();
    });

    it("a CRDT record whose value is not a change list is refused", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      const refused = refusal(ErrorCode.RECORD_REFUSED, /InvalidData: a MAP record's value must be a change list/);
      peer.put({ ...precious, c: "MAP" });
      await refused;
      await assertIntact();
    });

    it("11 bad records drop the link (too many strikes)", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      watchRefusals();
      const dropped = refusal(ErrorCode.RECORD_REFUSED, /too many invalid messages/);
      for (let i = 0; i < 11; i++) peer.put({ ...precious, v: `hacked-${i}` });
      const [closed] = await Promise.all([peer.waitClose(), dropped]);
      assert.equal(closed.code, CloseCode.TOO_MANY_STRIKES);
      const fromPeer = refusals.events.filter(([e]) => e.code === ErrorCode.RECORD_REFUSED);
      assert.ok(fromPeer.length >= 11, `refusals: ${fromPeer.length}`);
      assert.equal(srv.network.session(peer.id.clientId), undefined);
      await assertIntact();
    });

    it("10 bad records are tolerated (strikes are counted, not fatal)", async () => {
      const peer = await RawPeer.connect(portOf(srv));
      watchRefusals();
      for (let i = 0; i < 10; i++) peer.put({ ...precious, v: `hacked-${i}` });
      await until(() => refusals.events.length >= 10, [[srv, "refused"]], T, "10 refusals");
      assert.deepEqual(await peer.get("precious"), precious, "link still open");
      assert.equal(peer.isClosed, false);
      await assertIntact();
    });
  });
});
