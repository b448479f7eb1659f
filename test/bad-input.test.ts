/**
 * Hostile frames and handshakes on the wire: a raw `ws` client talking to a
 * ToolDb server on 127.0.0.1 (bad records: bad-records.test.ts). For every
 * attack the server must
 *   - emit `refused` with a code and a reason that names the problem,
 *   - not crash (no unhandled rejection: a process-wide guard fails the test),
 *   - keep a record it stored before the attack, with its original value,
 *   - keep serving other peers.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../src/base/errors.js";
import { PEER_RECORD_MAX_AGE_MS, clientIdOf, signPeerRecord } from "../src/records/peer-record.js";
import { randomId } from "../src/base/random.js";
import { CloseCode } from "../src/network/connection.js";
import { waitFor } from "./helpers/wait.js";
import { portOf } from "./helpers/nodes.js";
import { type Frame, rawIdentity as identity } from "./helpers/raw-peer.js";
import { RawPeer, T, TOPIC, badInputServer, startServer } from "./helpers/bad-input-server.js";

describe("bad input from a raw ws client", () => {
  const fx = badInputServer();
  const { refusal, assertIntact } = fx;

  // -- frames -------------------------------------------------------------------

  it("malformed JSON closes the link with 4000; the server stays up", async () => {
    const peer = await RawPeer.connect(portOf(fx.srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /malformed JSON/);
    peer.send('{"type":"get","id":');
    const [closed, event] = await Promise.all([peer.waitClose(), refused]);
    assert.equal(closed.code, CloseCode.BAD_MESSAGE);
    assert.match(closed.reason, /malformed JSON/);
    assert.equal(event.peer, peer.id.clientId);
    await assertIntact();
  });

  it("malformed JSON before the handshake closes the link with 4000", async () => {
    const peer = await RawPeer.open(portOf(fx.srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /malformed JSON/);
    peer.send("not json at all");
    const [closed] = await Promise.all([peer.waitClose(), refused]);
    assert.equal(closed.code, CloseCode.BAD_MESSAGE);
    await assertIntact();
  });

  it("an unknown message type is refused and the link stays usable", async () => {
    const peer = await RawPeer.connect(portOf(fx.srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /unknown message type/);
    peer.send({ type: "teleport", id: randomId(), to: [] });
    const event = await refused;
    assert.equal(event.peer, peer.id.clientId);
    assert.deepEqual(await peer.get("precious"), fx.precious, "same link still answers");
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
        const peer = await RawPeer.connect(portOf(fx.srv));
        const refused = refusal(ErrorCode.BAD_MESSAGE, reason);
        peer.send(frame);
        assert.equal((await refused).peer, peer.id.clientId);
        assert.deepEqual(await peer.get("precious"), fx.precious);
        await assertIntact();
      });
    }
  });

  it("an oversized frame closes the link (1009) and is reported as refused", async () => {
    const peer = await RawPeer.connect(portOf(fx.srv));
    const refused = refusal(ErrorCode.FRAME_TOO_LARGE, /too large/i);
    const closed = peer.waitClose();
    peer.send({ type: "put", id: randomId(), to: [], data: { ...fx.precious, v: "x".repeat(100 * 1024) } });
    assert.equal((await closed).code, CloseCode.TOO_LARGE);
    await refused;
    await assertIntact();
  });

  it("a binary frame is refused like malformed JSON (4000)", async () => {
    const peer = await RawPeer.connect(portOf(fx.srv));
    const refused = refusal(ErrorCode.BAD_MESSAGE, /malformed JSON/);
    peer.ws.send(Buffer.from(JSON.stringify({ type: "get", id: randomId(), to: [], key: "precious" })), { binary: true });
    const [closed] = await Promise.all([peer.waitClose(), refused]);
    assert.equal(closed.code, CloseCode.BAD_MESSAGE);
    await assertIntact();
  });

  it("a deeply nested value (20,000 levels) is refused without blowing the stack", async (t) => {
    const peer = await RawPeer.connect(portOf(fx.srv));
    const depth = 20_000;
    const v = "[".repeat(depth) + "]".repeat(depth);
    const frame = `{"type":"put","id":"${randomId()}","to":[],"data":{"k":"precious","a":"${fx.precious.a}","n":0,"t":${Date.now()},"h":"${fx.precious.h}","s":"${fx.precious.s}","c":null,"v":${v}}}`;
    const refused = waitFor(fx.srv, "refused", T, (e) => e.code === ErrorCode.RECORD_REFUSED || e.code === ErrorCode.BAD_MESSAGE);
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
      const peer = await RawPeer.open(portOf(fx.srv));
      const ping = await peer.ping();
      const sig = ping.peer.sig;
      ping.peer.sig = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
      const refused = refusal(ErrorCode.BAD_PEER, /signature/);
      peer.send(ping);
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.BAD_PEER);
      assert.equal(fx.srv.network.session(peer.id.clientId), undefined);
      await assertIntact();
    });

    it("a record signed by another key than its address", async () => {
      const peer = await RawPeer.open(portOf(fx.srv));
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
      const peer = await RawPeer.open(portOf(fx.srv));
      const refused = refusal(ErrorCode.TOPIC_MISMATCH, /topic mismatch/);
      peer.send(await peer.ping({ topic: "someone-elses-topic" }));
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.TOPIC_MISMATCH);
      assert.match(closed.reason, /topic mismatch/);
      await assertIntact();
    });

    it("stale timestamp", async () => {
      const peer = await RawPeer.open(portOf(fx.srv));
      const refused = refusal(ErrorCode.BAD_PEER, /stale/);
      peer.send(await peer.ping({ timestamp: Date.now() - PEER_RECORD_MAX_AGE_MS - 60_000 }));
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.BAD_PEER);
      await assertIntact();
    });

    it("timestamp in the future", async () => {
      const peer = await RawPeer.open(portOf(fx.srv));
      const refused = refusal(ErrorCode.BAD_PEER, /future/);
      peer.send(await peer.ping({ timestamp: Date.now() + 10 * 60_000 }));
      assert.equal((await peer.waitClose()).code, CloseCode.BAD_PEER);
      await refused;
      await assertIntact();
    });

    it("clientId not matching the address", async () => {
      const peer = await RawPeer.open(portOf(fx.srv));
      const victim = clientIdOf(fx.srv.nodeAddress()); // claim to be someone else
      const refused = refusal(ErrorCode.BAD_PEER, /client id does not match/);
      peer.send(await peer.ping({ clientId: victim }));
      const [closed] = await Promise.all([peer.waitClose(), refused]);
      assert.equal(closed.code, CloseCode.BAD_PEER);
      await assertIntact();
    });

    it("the server's own identity replayed back (self)", async () => {
      const peer = await RawPeer.open(portOf(fx.srv));
      const own = await fx.srv.localPeerRecord();
      const clientId = clientIdOf(own.address);
      const refused = refusal(ErrorCode.BAD_PEER, /self/);
      peer.send({ type: "ping", id: randomId(), to: [clientId], clientId, isServer: true, peer: own });
      assert.equal((await peer.waitClose()).code, CloseCode.SELF);
      await refused;
      await assertIntact();
    });

    it("a message other than ping before the handshake is refused", async () => {
      const peer = await RawPeer.open(portOf(fx.srv));
      const refused = refusal(ErrorCode.BAD_MESSAGE, /before handshake/);
      peer.send({ type: "put", id: randomId(), to: [], data: fx.precious });
      await refused;
      assert.equal(fx.srv.network.session(peer.id.clientId), undefined);
      await assertIntact();
    });
  });
});
