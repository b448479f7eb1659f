/**
 * The broadcast tree beside a real tool-db 2.6.6 server (npm `tool-db`,
 * through test/interop's WebSocket adapter): our servers relay to each other
 * on the tree, and the link to 2.6.6, which lists no capability, keeps the
 * plain relay in both directions. Real WebSockets on loopback.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TREE_CAPABILITY } from "../src/node/broadcast/broadcast-tree.js";
import type { ToolDb } from "../src/index.js";
import { LOOPBACK, legacyStored, ourPut, portOf, recordRefusals, waitFor, withNodes, withTimeout } from "./interop/interop-nodes.js";

/** Resolves once `db` has `count` server links. */
async function serverLinks(db: ToolDb, count: number, what: string): Promise<void> {
  while (db.network.peers.filter((p) => p.isServer).length < count) await waitFor(db, "peer-connect", what);
}

describe("broadcast tree beside tool-db 2.6.6", { timeout: 60_000 }, () => {
  it("a 2.6.6 server linked to a tree server gets our puts by the plain relay, and its clients' puts travel our tree", () =>
    withNodes(async (nodes) => {
      const legacy = await nodes.legacyServer();
      const { port: legacyPort } = legacy;
      // A dials the 2.6.6 server; B dials A; C dials B: the put below must cross the tree C -> B -> A, then reach 2.6.6.
      const a = await nodes.dhtServer({ legacyRecords: true, peers: [{ host: LOOPBACK, port: legacyPort }] });
      const b = await nodes.dhtServer({ legacyRecords: true, peers: [{ host: LOOPBACK, port: portOf(a) }] });
      const c = await nodes.dhtServer({ legacyRecords: true, peers: [{ host: LOOPBACK, port: portOf(b) }] });
      await withTimeout(Promise.all([serverLinks(a, 2, "A linked to 2.6.6 and B"), serverLinks(b, 2, "B linked"), serverLinks(c, 1, "C linked")]), "links");
      const refusals = recordRefusals(a, b, c);

      const legacyAddress = legacy.db.peerAccount.getAddress();
      const toLegacy = a.network.peers.find((p) => p.address === legacyAddress);
      assert.ok(toLegacy, "A is linked to the 2.6.6 server");
      assert.equal(toLegacy.caps.has(TREE_CAPABILITY), false, "2.6.6 lists no capability");
      assert.equal(a.broadcast.carries(toLegacy), false, "the 2.6.6 link is not on the tree");
      const toB = a.network.peers.find((p) => p.address === b.nodeAddress());
      assert.ok(toB && a.broadcast.carries(toB), "A-B is on the tree");

      // Our client's put at C -> tree -> A -> plain relay -> 2.6.6.
      const client = await nodes.dhtClient(portOf(c), { legacyRecords: true });
      const stored = legacyStored(legacy, "tree-to-legacy", "2.6.6 server storing a put relayed from our tree");
      const onA = ourPut(a, "tree-to-legacy", "A storing our put");
      await client.putData("tree-to-legacy", { via: "tree" });
      await onA;
      await stored;
      assert.ok(b.broadcast.stats.eagerSent > 0, "B passed the put on along the tree");

      // A 2.6.6 client's put at the 2.6.6 server -> A (2.6.6 relays to servers) -> tree -> B -> C.
      const legacyClient = await nodes.legacyNode({ peers: [legacyPort] });
      const onC = ourPut(c, "legacy-to-tree", "C storing the 2.6.6 client's put");
      await legacyClient.db.putData("legacy-to-tree", { via: "2.6.6" });
      await onC;
      assert.ok(a.broadcast.stats.eagerSent > 0, "A pushed the 2.6.6 put on the tree");
      assert.deepEqual(refusals, []);
    }));
});
