/**
 * Interop with the published npm `tool-db` 2.6.6 (and @tool-db/ecdsa-user
 * 1.1.3) on loopback, both directions, through a test-only WebSocket adapter
 * for 2.6.6 (test/interop/tooldb-ws-adapter.ts); the nodes and waits are in
 * test/interop/interop-nodes.ts. Records, accounts and subscriptions here;
 * links (catch-up, start-up, redial) and acknowledged puts in
 * interop-links.test.ts. Every wait is bounded and event-driven; every node
 * and socket is closed at the end.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import {
  ErrorCode,
  type ToolDbRecord,
  type RefusalEvent,
  boundRecordHash,
  isToolDbError,
  legacyRecordHash,
} from "../src/index.js";
import { legacyStored, legacyVerified, LOOPBACK, ourPut, portOf, recordRefusals, waitFor, withNodes, withTimeout } from "./interop/interop-nodes.js";

// ---- tests ------------------------------------------------------------------

describe("interop with npm tool-db 2.6.6", () => {
  it("a tool-db 2.6.6 client and a tooldb-dht client share records through a tooldb-dht server (legacyRecords)", () =>
    withNodes(async (nodes) => {
      const server = await nodes.dhtServer({ legacyRecords: true });
      const port = portOf(server);
      const ours = await nodes.dhtClient(port, { legacyRecords: true });
      const legacy = await nodes.legacyNode({ peers: [port] });
      const refusals = recordRefusals(server, ours);

      // The 2.6.6 client completed our verified handshake: the server knows it by its node key.
      const legacyAddress = legacy.db.peerAccount.getAddress();
      assert.ok(server.network.peers.some((p) => p.address === legacyAddress && !p.isServer));
      // It proves nothing (no nonce in its ping): a legacy link, unproven; ours is proven.
      assert.equal(server.network.peers.find((p) => p.address === legacyAddress)?.proven, false);
      assert.equal(server.network.peers.find((p) => p.address === ours.nodeAddress())?.proven, true);
      // And it learned our server from the pong's `servers` (2.6.6 handlePong verifies each record).
      assert.ok(legacy.db.isConnected);

      // 2.6.6 put -> our server verifies (legacy hash) -> our client gets it.
      const fromLegacy = { hello: "from 2.6.6", n: [1, 2, 3] };
      const arrived = ourPut(server, "from-legacy", "2.6.6 put on our server");
      await legacy.db.putData("from-legacy", fromLegacy);
      const [stored] = (await arrived) as [ToolDbRecord];
      assert.equal(stored.a, legacy.db.userAccount.getAddress());
      assert.equal(stored.h, legacyRecordHash(stored.v, stored.a, stored.t, stored.n), "2.6.6 hashes v+a+t+n, not the key");
      assert.deepEqual(await withTimeout(ours.getData("from-legacy"), "our getData"), fromLegacy);
      assert.deepEqual((await ours.records.get("from-legacy"))?.v, fromLegacy, "our client verified and kept it");

      // our put -> our server -> the 2.6.6 client's getData, and 2.6.6's verifier accepts it.
      const fromDht = { hello: "from tooldb-dht" };
      const onServer = ourPut(server, "from-dht", "our put on our server");
      await ours.putData("from-dht", fromDht);
      await onServer;
      const verified = legacyVerified(legacy, "from-dht", "2.6.6 verifying our record");
      assert.deepEqual(await withTimeout(legacy.db.getData("from-dht"), "2.6.6 getData"), fromDht);
      await verified;

      assert.deepEqual(refusals, [], "nothing refused on our side");
    }));

  it("a tooldb-dht client works against a tool-db 2.6.6 server, and a 2.6.6 client there sees our put", () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      const { port } = legacyServer;
      const ours = await nodes.dhtClient(port, { legacyRecords: true });
      const refusals = recordRefusals(ours);

      // The 2.6.6 pong has no `peer`; we took its identity from its own entry in `servers`.
      const [session] = ours.network.peers;
      assert.ok(session);
      assert.equal(session.address, legacyServer.db.peerAccount.getAddress());
      assert.equal(session.isServer, true);
      // A 2.6.6 server answers no challenge: a legacy link that gets no server privileges.
      assert.equal(session.proven, false);
      assert.equal(session.provenServer, false);
      assert.equal(session.record.port, port, "the 2.6.6 server signed its bound port");

      const legacyClient = await nodes.legacyNode({ peers: [port] });

      // our put -> 2.6.6 server verifies and stores -> 2.6.6 client reads it.
      const ourValue = { from: "tooldb-dht", list: ["a", "b"] };
      const stored = legacyStored(legacyServer, "dht-key", "2.6.6 server storing our put");
      await ours.putData("dht-key", ourValue);
      await stored;
      assert.deepEqual(await withTimeout(legacyClient.db.getData("dht-key"), "2.6.6 client getData"), ourValue);

      // 2.6.6 client put -> 2.6.6 server -> our getData (verified here as a legacy record).
      const theirValue = { from: "2.6.6 client" };
      const theirs = legacyStored(legacyServer, "legacy-key", "2.6.6 server storing the 2.6.6 client's put");
      await legacyClient.db.putData("legacy-key", theirValue);
      await theirs;
      assert.deepEqual(await withTimeout(ours.getData("legacy-key"), "our getData from a 2.6.6 server"), theirValue);
      assert.deepEqual((await ours.records.get("legacy-key"))?.v, theirValue);

      // A second tooldb-dht client on the same 2.6.6 server reads our first client's put.
      const ours2 = await nodes.dhtClient(port, { legacyRecords: true });
      assert.deepEqual(await withTimeout(ours2.getData("dht-key"), "second client getData"), ourValue);

      assert.deepEqual(refusals, []);
    }));

  it("strict default: our server refuses 2.6.6 records (KeyNotBound) but takes ours; 2.6.6 at pow 0 takes our key-bound records", () =>
    withNodes(async (nodes) => {
      const strict = await nodes.dhtServer();
      const port = portOf(strict);
      const legacyClient = await nodes.legacyNode({ peers: [port] });
      const ours = await nodes.dhtClient(port);

      // A 2.6.6 put is refused, with a reason naming KeyNotBound; the link stays up.
      const refused = waitFor(strict, "refused", "KeyNotBound refusal", (e: RefusalEvent) => e.key === "legacy-put");
      await legacyClient.db.putData("legacy-put", { v: 1 });
      const [event] = (await refused) as [RefusalEvent];
      assert.equal(event.code, ErrorCode.RECORD_REFUSED);
      assert.match(event.reason, /KeyNotBound/);
      assert.equal(await strict.records.get("legacy-put"), undefined, "not stored");
      assert.ok(strict.network.peers.some((p) => p.address === legacyClient.db.peerAccount.getAddress()), "one refusal does not drop the link");
      // Nor do many: an honest 2.6.6 writer is refused, not struck (before: banned after 10 writes).
      const more = Array.from({ length: 15 }, (_, i) => `legacy-more-${i}`);
      const allRefused = Promise.all(more.map((key) => waitFor(strict, "refused", `KeyNotBound refusal of ${key}`, (e: RefusalEvent) => e.key === key)));
      // Each its own value: 2.6.6 sends a hash once per peer, and its hash does not cover the key.
      for (const [i, key] of more.entries()) await legacyClient.db.putData(key, { more: i });
      await allRefused;
      assert.ok(strict.network.peers.some((p) => p.address === legacyClient.db.peerAccount.getAddress()), "15 more refusals do not drop the link");
      assert.equal(strict.network.guard.bans.size, 0, "nobody banned");

      // Our own client's put is accepted.
      const accepted = ourPut(strict, "strict-put", "our key-bound put");
      await ours.putData("strict-put", { v: 2 });
      const [record] = (await accepted) as [ToolDbRecord];
      assert.equal(record.h, boundRecordHash(record.k, record.v, record.a, record.t, record.n));

      // A 2.6.6 client reads our key-bound record from the strict server, and its verifier accepts it.
      const verified = legacyVerified(legacyClient, "strict-put", "2.6.6 client verifying a key-bound record");
      assert.deepEqual(await withTimeout(legacyClient.db.getData("strict-put"), "2.6.6 getData"), { v: 2 });
      await verified;

      // A 2.6.6 server at pow 0 only checks the signature over h: it stores our key-bound record.
      const legacyServer = await nodes.legacyServer();
      const linked = waitFor(ours, "peer-connect", "link to the 2.6.6 server", (p: { address: string }) => p.address === legacyServer.db.peerAccount.getAddress());
      ours.network.connectTo(LOOPBACK, legacyServer.port);
      await linked;
      const stored = legacyStored(legacyServer, "bound-put", "2.6.6 server storing a key-bound record");
      const verifiedThere = legacyVerified(legacyServer, "bound-put", "2.6.6 server verifying a key-bound record");
      await ours.putData("bound-put", { bound: true });
      await Promise.all([stored, verifiedThere]);
      const kept = JSON.parse(legacyServer.store.peek("bound-put")!) as ToolDbRecord;
      assert.equal(kept.h, boundRecordHash(kept.k, kept.v, kept.a, kept.t, kept.n), "key-bound hash kept as is");
      assert.notEqual(kept.h, legacyRecordHash(kept.v, kept.a, kept.t, kept.n));
    }));

  it("accounts: a 2.6.6 signUp signs in on tooldb-dht, and a tooldb-dht signUp signs in on 2.6.6 (same password format)", () =>
    withNodes(async (nodes) => {
      const server = await nodes.dhtServer({ legacyRecords: true });
      const port = portOf(server);
      const legacy = await nodes.legacyNode({ peers: [port] });
      const ours = await nodes.dhtClient(port, { legacyRecords: true });

      // 2.6.6 signUp: stores locally, broadcasts, then (500 ms later) checks peers
      // for a conflicting sign-up with a get. Wait for that get's answer too, so
      // its 2 s timer is cleared and nothing is left running.
      const onServer = ourPut(server, "==alice", "2.6.6 sign-up record on our server");
      const signup = await legacy.db.signUp("alice", "correct horse");
      const conflictCheckAnswered = waitFor(
        legacy.db,
        "message",
        "2.6.6 sign-up conflict check answered",
        (m: { type: string; id: string; data?: ToolDbRecord }) => m.type === "put" && m.data?.k === "==alice" && m.id !== signup.id,
      );
      const [account] = (await onServer) as [ToolDbRecord<{ name: string; keys: string; iv: string }>];
      // 2.6.6 stores the fresh key pair's random animal name here, not the user name.
      assert.equal(typeof account.v.name, "string");
      await conflictCheckAnswered;

      // Wrong password: refused with a typed error.
      await assert.rejects(
        withTimeout(ours.signIn("alice", "wrong"), "signIn with a wrong password"),
        (err: unknown) => isToolDbError(err) && err.code === ErrorCode.WRONG_PASSWORD,
      );
      // Right password: we become the account 2.6.6 created.
      await withTimeout(ours.signIn("alice", "correct horse"), "our signIn of a 2.6.6 account");
      assert.equal(ours.userAccount.getAddress(), account.a);

      // We write under alice's namespace; 2.6.6, signed in as alice, reads it back.
      const profile = { bio: "written by tooldb-dht" };
      const profileKey = `:${account.a}.profile`;
      const written = ourPut(server, profileKey, "namespaced put on our server");
      await ours.putData("profile", profile, true);
      await written;
      await withTimeout(legacy.db.signIn("alice", "correct horse"), "2.6.6 signIn");
      assert.equal(legacy.db.userAccount.getAddress(), account.a);
      assert.deepEqual(await withTimeout(legacy.db.getData("profile", true), "2.6.6 namespaced getData"), profile);

      // The other way: a tooldb-dht sign-up, signed in by 2.6.6.
      const bobOnServer = ourPut(server, "==bob", "our sign-up record on our server");
      await withTimeout(ours.signUp("bob", "battery staple"), "our signUp");
      const [bob] = (await bobOnServer) as [ToolDbRecord];
      await withTimeout(legacy.db.signIn("bob", "battery staple"), "2.6.6 signIn of a tooldb-dht account");
      assert.equal(legacy.db.userAccount.getAddress(), bob.a);
      assert.equal(legacy.db.userAccount.getUsername(), "bob");
    }));

  it("a 2.6.6 client subscribed on our server gets every update, and calls our server functions", () =>
    withNodes(async (nodes) => {
      const server = await nodes.dhtServer({ legacyRecords: true });
      server.addServerFunction("add", (args: unknown) => {
        const [a, b] = args as [number, number];
        return a + b;
      });
      const port = portOf(server);
      const ours = await nodes.dhtClient(port);
      const legacy = await nodes.legacyNode({ peers: [port] });

      // 2.6.6 key listeners are debounced (100 ms); wait for each value in turn.
      const values = new EventEmitter<{ value: [unknown] }>();
      const listener = legacy.db.addKeyListener("live", (m: ToolDbRecord) => values.emit("value", m.v));
      try {
        const stored = ourPut(server, "live", "initial value on our server");
        await ours.putData("live", 0);
        await stored;
        // The server answers a subscribe with the current value: proof that the subscription is registered.
        const initial = waitFor(values, "value", "initial value pushed on subscribe", (v) => v === 0);
        await legacy.db.subscribeData("live");
        await initial;
        // 2.6.6 servers deliver only the first update (they reuse the subscribe id, which
        // 2.6.6 clients then drop as a duplicate). Ours relays with each put's own id.
        for (const n of [1, 2, 3]) {
          const seen = waitFor(values, "value", `update ${n} pushed to the 2.6.6 subscriber`, (v) => v === n);
          await ours.putData("live", n);
          await seen;
        }
      } finally {
        legacy.db.removeKeyListener(listener);
      }

      assert.deepEqual(await withTimeout(legacy.db.doFunction("add", [2, 3]), "2.6.6 doFunction"), { return: 5, code: "OK" });
      const missing = await withTimeout(legacy.db.doFunction("nope", []), "2.6.6 doFunction of an unknown function");
      assert.equal(missing.code, "NOT_FOUND");
    }));

  it("a tooldb-dht client subscribed on a 2.6.6 server gets every update, though 2.6.6 pushes them all under the subscribe's id", () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      const { port } = legacyServer;
      const ours = await nodes.dhtClient(port, { legacyRecords: true });
      const writer = await nodes.legacyNode({ peers: [port] });
      const values = new EventEmitter<{ value: [unknown] }>();
      ours.addKeyListener("feed", (record) => values.emit("value", record.v));
      const stored = legacyStored(legacyServer, "feed", "the first value on the 2.6.6 server");
      await writer.db.putData("feed", 0);
      await stored;
      const initial = waitFor(values, "value", "the current value pushed on subscribe", (v) => v === 0);
      await ours.subscribeData("feed");
      await initial;
      // Before: only the first update arrived; the others carried the same message id and were dropped as seen.
      for (const n of [1, 2, 3]) {
        const seen = waitFor(values, "value", `update ${n} pushed by the 2.6.6 server`, (v) => v === n);
        await writer.db.putData("feed", n);
        await seen;
      }
    }));
});
