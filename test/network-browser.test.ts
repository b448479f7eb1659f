import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { WebSocket as WsWebSocket } from "ws";
import { BrowserWebSocketNetwork, ErrorCode, ToolDb, isToolDbError, type StandardWebSocketConstructor } from "../src/index.js";
import { FAST, closeAll, portOf, startServer, waitUntil } from "./helpers/nodes.js";

// `ws`'s WebSocket implements the standard event interface, so it stands in for a browser's here.
const Network = BrowserWebSocketNetwork.using(WsWebSocket as unknown as StandardWebSocketConstructor);

describe("BrowserWebSocketNetwork (standard WebSocket API)", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  async function browserClient(server: ToolDb): Promise<ToolDb> {
    const db = new ToolDb({ topic: "test", ...FAST, networkAdapter: Network, peers: [{ host: "127.0.0.1", port: portOf(server) }] });
    nodes.push(db);
    await db.ready;
    await waitUntil(() => db.network.peers.length === 1, 5000, "browser client link");
    return db;
  }

  it("links to a Node server with the signed handshake and carries puts, gets and subscriptions", async () => {
    const server = await startServer();
    nodes.push(server);
    const a = await browserClient(server);
    const b = await browserClient(server);
    const seen: unknown[] = [];
    b.addKeyListener("k", (r) => seen.push(r.v));
    await b.subscribeData("k");
    await waitUntil(() => server.remoteSubscriptions.subscribers("k")?.size === 1, 2000, "subscription");
    await a.putData("k", 1);
    await a.putData("k", 2);
    await waitUntil(() => seen.at(-1) === 2, 2000, "updates");
    assert.equal(await b.getData("k"), 2);
    assert.equal(a.network.peers[0]!.address, server.nodeAddress());
  });

  it("reconnects after the server restarts", async () => {
    const server = await startServer();
    const port = portOf(server);
    const client = await browserClient(server);
    await server.close();
    await waitUntil(() => client.network.peers.length === 0, 3000, "disconnect");
    const again = await startServer({ port });
    nodes.push(again);
    await waitUntil(() => client.network.peers.length === 1, 5000, "reconnect");
  });

  it("refuses to be a server", async () => {
    const db = new ToolDb({ topic: "test", server: true, networkAdapter: Network });
    nodes.push(db);
    await assert.rejects(db.ready, (err: unknown) => isToolDbError(err, ErrorCode.INVALID_ARGUMENT));
  });
});
