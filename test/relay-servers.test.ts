/**
 * A server passes each record it stores on to the other servers (and to
 * the clients subscribed to its key) without walking the sessions of all
 * its clients: a server holds thousands of client links and a catch-up
 * relays a million records. With 5,000 client sessions, sending a relay
 * through every session with a server filter cost 153 µs a record; the
 * network keeps the server sessions apart (`sendToServers`), which costs
 * what the frame's serialisation costs. Real nodes on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { ToolDbMessage } from "../src/records/messages.js";
import { closeAll, linkServers, startClient, startServer, waitUntil } from "./helpers/nodes.js";

const T = 10_000;
const CLIENTS = 12;

/** The server sessions a node keeps apart from its clients'. */
function serverSessions(db: ToolDb): string[] {
  const links = (db.network as unknown as { links: { serverSessions: Map<string, PeerSession> } }).links;
  return [...links.serverSessions.values()].map((s) => s.address);
}

/** Counts the `put` frames `db` receives. */
function countPuts(db: ToolDb): { puts: number } {
  const seen = { puts: 0 };
  const handle = db.handleMessage.bind(db);
  db.handleMessage = (message: ToolDbMessage, from: PeerSession) => {
    if (message.type === "put") seen.puts++;
    return handle(message, from);
  };
  return seen;
}

describe("relays go to servers without walking the clients", { timeout: 60_000 }, () => {
  it("a client's put reaches the other server and the subscribed client, and no other client; server sessions are tracked as links open and close", { timeout: 40_000 }, async () => {
    const a = await startServer({ topic: "relay-servers" });
    const b = await startServer({ topic: "relay-servers" });
    const clients: ToolDb[] = [];
    try {
      await linkServers(a, b);
      for (let i = 0; i < CLIENTS; i++) clients.push(await startClient([a], { topic: "relay-servers" }));
      assert.deepEqual(serverSessions(a), [b.nodeAddress()], "a keeps b apart, none of its clients");
      assert.equal(a.network.peers.length, CLIENTS + 1);

      const [writer, subscriber, ...others] = clients;
      await subscriber!.subscribeData("relayed");
      await waitUntil(() => a.remoteSubscriptions.subscribers("relayed")?.has(subscriber!.network.getClientAddress()) ?? false, T, "the subscription at a");
      const counts = others.map(countPuts);
      const got = new Promise<unknown>((resolve) => subscriber!.addKeyListener("relayed", (r) => resolve(r.v)));
      await writer!.putData("relayed", "to servers", false, { ack: 1 });
      await waitUntil(async () => (await b.getData("relayed", false, 200).catch(() => undefined)) === "to servers", T, "the record on b");
      assert.equal(await got, "to servers", "the subscribed client got it");
      assert.deepEqual(counts.map((c) => c.puts), others.map(() => 0), "clients without a subscription get no relay");

      await b.close();
      await waitUntil(() => serverSessions(a).length === 0, T, "b's session dropped from a's server sessions");
      assert.equal(a.network.sendToServers({ type: "put", id: "none", to: [], data: {} as never }), 0);
    } finally {
      await closeAll(...clients, a, b);
    }
  });
});
