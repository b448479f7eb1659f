/**
 * Links and acknowledged puts between tooldb-dht and the published npm
 * `tool-db` 2.6.6 on loopback: a server catching up from a 2.6.6 server, a
 * client reaching a 2.6.6 server that is a day old, starting up or
 * restarted, and acks 2.6.6 cannot forge or does not speak (records,
 * accounts and subscriptions: interop.test.ts). The nodes and waits are in
 * test/interop/interop-nodes.ts. Every wait is bounded and event-driven;
 * every node and socket is closed at the end.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, ToolDb, isToolDbError } from "../src/index.js";
import { getPeerSignature, handshakeOutcome, legacyStored, LOOPBACK, ourPut, portOf, recordRefusals, waitFor, withNodes, withTimeout } from "./interop/interop-nodes.js";

describe("interop with npm tool-db 2.6.6", () => {
  it("a tooldb-dht server linking to a 2.6.6 server catches up through query/get (range reconciliation is not offered to it)", () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      const { port } = legacyServer;
      const legacyClient = await nodes.legacyNode({ peers: [port] });
      const keys = ["catch-up-1", "catch-up-2", "catch-up-3"];
      for (const key of keys) {
        const stored = legacyStored(legacyServer, key, `2.6.6 server storing ${key}`);
        await legacyClient.db.putData(key, { key });
        await stored;
      }
      const ours = await nodes.dhtServer({ legacyRecords: true });
      const refusals = recordRefusals(ours);
      const caughtUp = Promise.all(keys.map((key) => ourPut(ours, key, `catch-up of ${key}`)));
      ours.network.connectTo(LOOPBACK, port);
      await caughtUp;
      const [session] = ours.network.peers;
      assert.ok(session?.isServer);
      assert.deepEqual([...session.caps], [], "2.6.6 lists no capabilities");
      for (const key of keys) assert.deepEqual((await ours.records.get(key))?.v, { key });
      assert.deepEqual(refusals, []);
    }));

  it(
    "a tooldb-dht client connects to a 2.6.6 server that has been up for more than a day",
    () =>
      withNodes(async (nodes) => {
        const { db, port } = await nodes.legacyServer();
        // 2.6.6 signs its own server record once, in the "init" handler, and serves it in
        // every pong from then on. Re-sign it as a server started 25 hours ago would have.
        const startedAt = Date.now() - 25 * 60 * 60 * 1000;
        const self = db.serverPeers.find((p) => p.address === db.peerAccount.getAddress());
        assert.ok(self, "the 2.6.6 server lists itself");
        self.timestamp = startedAt;
        self.sig = await getPeerSignature(db.peerAccount, db.options.topic, startedAt, self.host, self.port);

        const client = nodes.adopt(
          new ToolDb({ topic: nodes.topic, peers: [{ host: LOOPBACK, port }], maxRetries: 1, wait: 20, handshakeTimeout: 2000 }),
        );
        const outcome = handshakeOutcome(client, "the handshake or its refusal");
        await client.ready;
        const result = await outcome;
        assert.equal(result, "connected");
      }),
  );

  it("a tooldb-dht client redials a 2.6.6 server that restarted on the same port", () =>
    withNodes(async (nodes) => {
      const first = await nodes.legacyServer();
      const { port } = first;
      const ours = await nodes.dhtClient(port);
      const dropped = waitFor(ours, "peer-disconnect", "link drop when the 2.6.6 server stops");
      await first.net.close();
      await dropped;
      // Listening only once it lists itself: otherwise a redial can land in 2.6.6's
      // start-up window (see the next test).
      const second = await nodes.legacyServer({ port, listenWhenListed: true });
      const address = second.db.peerAccount.getAddress();
      // The redial may already have completed while the new server finished starting.
      if (!ours.network.peers.some((p) => p.address === address)) {
        await waitFor(ours, "peer-connect", "redial to the restarted 2.6.6 server", (p: { address: string }) => p.address === address);
      }
      assert.equal(ours.network.peers.length, 1);
    }));

  it(
    "a tooldb-dht client that reaches a 2.6.6 server during its start-up retries instead of giving up",
    () =>
      withNodes(async (nodes) => {
        const { db, port } = await nodes.legacyServer();
        // Reproduce the start-up window: 2.6.6 answers pings before its own record is in serverPeers.
        const index = db.serverPeers.findIndex((p) => p.address === db.peerAccount.getAddress());
        assert.notEqual(index, -1);
        const [self] = db.serverPeers.splice(index, 1);

        const client = nodes.adopt(
          new ToolDb({ topic: nodes.topic, peers: [{ host: LOOPBACK, port }], wait: 20, maxReconnectDelay: 200, maxRetries: 5 }),
        );
        let released = false;
        const outcome = handshakeOutcome(client, "the handshake or the end of retries", (e) => {
          if (!/no verifiable identity/.test(e.reason)) return `unexpected refusal: ${e.reason}`;
          // The server finished starting: it lists itself from now on.
          if (!released) db.serverPeers.push(self!);
          released = true;
          return undefined;
        });
        await client.ready;
        assert.equal(await outcome, "connected");
      }),
  );

  it("ack: n counts proven servers only: a confirmation forged by a 2.6.6 server (an unproven link) counts for nothing", () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      const proven = await nodes.dhtServer({ legacyRecords: true });
      const ours = await nodes.dhtClient(legacyServer.port, { legacyRecords: true });
      ours.network.connectTo(LOOPBACK, portOf(proven));
      await withTimeout(
        (async () => {
          while (ours.network.peers.length < 2) await new Promise((r) => setTimeout(r, 10));
        })(),
        "the link to the proven server",
      );
      const legacyLink = ours.network.peers.find((p) => !p.proven)!;
      assert.equal(legacyLink.isServer, true, "the 2.6.6 server says it is a server");
      const confirmed = waitFor(ours, "put-confirmed", "the proven server's confirmation");
      const put = ours.putData("needs-two", 1, false, { ack: 2, timeoutMs: 3000 });
      const [{ server }] = await confirmed;
      assert.equal(server, proven.network.getClientAddress());
      // The 2.6.6 server, modified to lie, confirms the same record on its link.
      const h = (await ours.records.get("needs-two"))!.h;
      const forged = waitFor(ours, "message", "the forged putAck", (m: { type: string }) => m.type === "putAck");
      legacyServer.net.clientToSend[ours.network.getClientAddress()]!(JSON.stringify({ type: "putAck", id: "forged", to: [], stored: [h] }));
      await forged;
      await assert.rejects(put, (err) => isToolDbError(err, ErrorCode.ACK_TIMEOUT) && /confirmed by 1 of 2/.test(err.message));
      assert.deepEqual(ours.outbox.pending().map((p) => p.confirmedBy), [[proven.network.getClientAddress()]], "the outbox counts the proven server alone");
    }));

  it("acknowledged puts are a wire extension 2.6.6 ignores: it stores a put asking for a confirmation and drops putAck frames", () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      const ours = await nodes.dhtClient(legacyServer.port, { legacyRecords: true });
      const refusals = recordRefusals(ours);
      const stored = legacyStored(legacyServer, "asks-ack", "2.6.6 server storing a put with ack: true");
      // 2.6.6 never confirms, so the acknowledged put times out and stays in the outbox.
      const put = ours.putData("asks-ack", 1, false, { ack: 1, timeoutMs: 200 });
      await assert.rejects(put, (err) => isToolDbError(err, ErrorCode.ACK_TIMEOUT));
      await stored;
      assert.equal(ours.outbox.size, 1);
      // An unknown type on 2.6.6 neither breaks the link nor stops later messages.
      const [session] = ours.network.peers;
      session!.send({ type: "putAck", id: "interop-ack", stored: ["0".repeat(64)] });
      const after = legacyStored(legacyServer, "after-ack", "2.6.6 server storing a put sent after a putAck");
      await ours.putData("after-ack", 2);
      await after;
      assert.equal(ours.network.peers.length, 1);
      assert.deepEqual(refusals, []);
    }));
});
