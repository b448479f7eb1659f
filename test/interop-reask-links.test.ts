/**
 * Asking a tool-db 2.6.6 peer again for a record it already sent on the link
 * (src/node/legacy-reasks.ts), beyond a read from a 2.6.6 server
 * (interop-reread.test.ts): a tooldb-dht server asking a 2.6.6 client, and a
 * subscribe. 2.6.6 sends a record (by hash) once per link and forgets that
 * only on a ping or pong from the peer; a record this node did not keep (a
 * custom verifier refused it then) was never sent again on that link. And
 * what the ping costs the 2.6.6 peer: one pong, nothing else re-sent.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb, type ToolDbRecord } from "../src/index.js";
import { signRecord } from "../src/node/record-signer.js";
import { testAuthor } from "./helpers/signed-records.js";
import { type Legacy, portOf, waitFor, withNodes } from "./interop/interop-nodes.js";

const T = 30_000;
/** The second ask's wait: long, so an ask answered is told apart from one that waited it out. */
const READ_WAIT_MS = 3000;

/** The record of `key` held by `node` (a 2.6.6 node answers gets and subscribes from its store). */
async function holding(node: Legacy, key: string, value: unknown): Promise<void> {
  const record: ToolDbRecord = await signRecord(await testAuthor(), key, value, Date.now(), 0, false);
  await node.store.put(key, JSON.stringify(record));
}

/**
 * `db` refuses records of `key` until `accept()` (as an order-dependent
 * custom verifier does until what it needs is stored); `refused` resolves
 * on the first refusal.
 */
function refusesUntilAccepted(db: ToolDb, key: string): { refused: Promise<unknown>; accept(): void } {
  let accepting = false;
  db.addCustomVerification(key, () => accepting);
  const refused = waitFor(db, "refused", `the first answer for ${key} refused`, (e: RefusalEvent) => e.code === ErrorCode.CUSTOM_VERIFICATION_FAILED && e.key === key);
  return { refused, accept: () => void (accepting = true) };
}

/** Reads `key` on `db`: the value and how long it took (ms). */
async function timedRead(db: ToolDb, key: string): Promise<{ value: unknown; ms: number }> {
  const started = performance.now();
  const value = await db.getData(key, false, READ_WAIT_MS);
  return { value, ms: performance.now() - started };
}

describe("asking a tool-db 2.6.6 peer again for a record it sent on the link", { timeout: 4 * T }, () => {
  it("a tooldb-dht server reads a key only a 2.6.6 client of it holds, refused the first time: the read again is answered", { timeout: T }, () =>
    withNodes(async (nodes) => {
      const server = await nodes.dhtServer();
      const client = await nodes.legacyNode({ peers: [portOf(server)] });
      await holding(client, "client-held", { v: 1 });
      const gate = refusesUntilAccepted(server, "client-held");
      const first = server.getData("client-held", false, 1000);
      await gate.refused;
      assert.equal(await first, null, "the only answer was refused");
      gate.accept();
      const { value, ms } = await timedRead(server, "client-held");
      assert.deepEqual(value, { v: 1 }, "answered (before: the 2.6.6 client left the second get unanswered, null)");
      assert.ok(ms < READ_WAIT_MS / 2, `answered within ${READ_WAIT_MS / 2} ms, took ${Math.round(ms)} ms`);
    }));

  it("a tooldb-dht client subscribes to a key a 2.6.6 server sent it before (refused then): the current value is delivered", { timeout: T }, () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      await holding(legacyServer, "sub-key", { v: 1 });
      const client = await nodes.dhtClient(legacyServer.port);
      const gate = refusesUntilAccepted(client, "sub-key");
      const first = client.getData("sub-key", false, 1000);
      await gate.refused;
      assert.equal(await first, null, "the only answer was refused");
      gate.accept();
      const delivered = waitFor(client, "data", "the subscription's current value (before: never sent again on the link)", (r: ToolDbRecord) => r.k === "sub-key", READ_WAIT_MS);
      await client.subscribeData("sub-key");
      const [record] = (await delivered) as [ToolDbRecord];
      assert.deepEqual(record.v, { v: 1 });
    }));

  it("what the ping costs the 2.6.6 server: it answers one pong and re-sends nothing; its server list does not grow", { timeout: T }, () =>
    withNodes(async (nodes) => {
      const legacyServer = await nodes.legacyServer();
      const keys = Array.from({ length: 20 }, (_, i) => `cost-${i}`);
      for (const key of keys) await holding(legacyServer, key, { key });
      const client = await nodes.dhtClient(legacyServer.port);
      for (const key of keys) assert.deepEqual(await client.getData(key, false, READ_WAIT_MS), { key });
      // From here on: the frames the 2.6.6 server sends, its onPeerConnect hook, its server list.
      const net = legacyServer.net as unknown as { executeSendToClient(id: string, message: string): void };
      const send = net.executeSendToClient.bind(net);
      const sent: string[] = [];
      net.executeSendToClient = (id, message) => {
        sent.push((JSON.parse(message) as { type: string }).type);
        send(id, message);
      };
      const hooks: string[] = [];
      legacyServer.db.onPeerConnect = (id: string) => void hooks.push(id);
      const serverPeers = legacyServer.db.serverPeers.length;
      const pings = client.reasks.pings;
      const reads = await Promise.all(keys.map((key) => timedRead(client, key)));
      for (const [i, { value, ms }] of reads.entries()) {
        assert.deepEqual(value, { key: keys[i] });
        assert.ok(ms < READ_WAIT_MS / 2, `${keys[i]} answered within ${READ_WAIT_MS / 2} ms, took ${Math.round(ms)} ms`);
      }
      assert.equal(client.reasks.pings - pings, 1, "one ping for the 20 reads");
      assert.deepEqual(sent.sort(), ["pong", ...keys.map(() => "put")], "a pong, and the 20 answers: nothing re-sent unasked");
      assert.equal(hooks.length, 2, "its onPeerConnect ran twice for the ping (with our id, and with its own address)");
      assert.equal(legacyServer.db.serverPeers.length, serverPeers, "its server list did not grow");
    }));
});
