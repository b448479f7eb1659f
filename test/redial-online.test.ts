/**
 * Back online, a page dials at once the servers that wait out a reconnect
 * delay (before: a page whose server was down long enough sat offline up to
 * `maxReconnectDelay`, 30 s, after the network came back; found by an
 * outside check of browsers). The browser's `online` event is played by an
 * EventTarget standing in for `window`; the server and links are real.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { WebSocket as WsWebSocket } from "ws";
import { BrowserWebSocketNetwork, ToolDb, type StandardWebSocketConstructor } from "../src/index.js";
import { ServerSelection } from "../src/entries/hybrid.js";
import { closeAll, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";

const Network = BrowserWebSocketNetwork.using(WsWebSocket as unknown as StandardWebSocketConstructor);
type Window = { addEventListener?: EventTarget["addEventListener"]; removeEventListener?: EventTarget["removeEventListener"] };

describe("going back online", { timeout: 60_000 }, () => {
  const nodes: ToolDb[] = [];
  const selections: ServerSelection[] = [];
  const windowLike = new EventTarget();
  const g = globalThis as Window;
  g.addEventListener = windowLike.addEventListener.bind(windowLike);
  g.removeEventListener = windowLike.removeEventListener.bind(windowLike);
  after(async () => {
    await Promise.all(selections.map((s) => s.close()));
    await closeAll(...nodes);
    delete g.addEventListener;
    delete g.removeEventListener;
  });

  it("dials a waiting server at once, and only once", async () => {
    const first = await startServer();
    const port = portOf(first);
    // A first reconnect delay of 30 s on a clock that moves only when told: only the online event brings the link back.
    const clock = new ManualClock(Date.now());
    const client = new ToolDb({ topic: "test", networkAdapter: Network, peers: [{ host: "127.0.0.1", port }], wait: 30_000, maxReconnectDelay: 30_000, clock });
    nodes.push(client);
    await client.ready;
    const selection = new ServerSelection(client, { cache: false });
    selections.push(selection);
    await selection.ready;
    await waitUntil(() => client.network.peers.length === 1, 10_000, "the first link");
    await first.close();
    await waitUntil(() => client.network.dialTargets().some((t) => t.state === "waiting"), 10_000, "the client waiting out its reconnect delay");
    const again = await startServer({ port });
    nodes.push(again);
    windowLike.dispatchEvent(new Event("online"));
    await waitUntil(() => client.network.peers.some((p) => p.address === again.nodeAddress()), 10_000, "the link back, long before the 30 s delay");
    assert.deepEqual(client.network.dialTargets().map((t) => t.state), ["connected"]);
    // The redial that was scheduled is gone with the hurried one (before: it fired later and dialed a second link).
    clock.advance(31_000);
    assert.deepEqual(client.network.dialTargets().map((t) => t.state), ["connected"]);
  });
});
