/**
 * Paged key queries against a server that pages slowly on purpose (found by
 * an outside check: one key a page, each just under `timeoutMs`, kept a
 * `queryKeys(prefix, false, 1000)` going for minutes). A page that says
 * more follow must be full, and paging ends QUERY_PAGING_TIMEOUTS (30)
 * times `timeoutMs` after the query was sent, whatever the pages.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { ToolDbMessage } from "../src/records/messages.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { closeAll, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";

const T = 30_000;

/** Makes `server` answer every query with `page(n)` (the n-th page it sends) after `delayMs`, always naming a next page. */
function pageForever(server: ToolDb, delayMs: number, page: (n: number) => string[]): { sent: number } {
  const count = { sent: 0 };
  const handle = server.handleMessage.bind(server);
  server.handleMessage = (message: ToolDbMessage, from: PeerSession) => {
    if (message.type !== "query") return handle(message, from);
    const keys = page(count.sent++);
    setTimeout(() => from.send({ type: "queryAck", id: message.id, to: [], keys, next: keys[keys.length - 1] }), delayMs);
    return undefined;
  };
  return count;
}

describe("paged key queries from a peer that pages slowly", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("a page of one key that says more follow is the last one asked for", { timeout: T }, async () => {
    const server = await startServer();
    const client = await startClient([server]);
    nodes.push(server, client);
    const pages = pageForever(server, 50, (n) => [`drip/${String(n).padStart(6, "0")}`]);
    const started = Date.now();
    const keys = await client.queryKeys("drip/", false, 500);
    assert.deepEqual(keys, ["drip/000000"]);
    assert.equal(pages.sent, 1, "no second page asked");
    assert.ok(Date.now() - started < 5000);
  });

  it("full pages that never end stop at 30 times timeoutMs", { timeout: T }, async () => {
    const server = await startServer();
    const client = await startClient([server]);
    nodes.push(server, client);
    // 1,000 keys a page (full), each 20 ms after it was asked, for ever: without the deadline, 1,000 pages.
    pageForever(server, 20, (n) => Array.from({ length: 1000 }, (_, i) => `full/${String(n * 1000 + i).padStart(9, "0")}`));
    const started = Date.now();
    const keys = await client.queryKeys("full/", false, 200);
    const took = Date.now() - started;
    assert.ok(took < 9000, `paging ended ${took} ms after the query (deadline 6,000 ms), ${keys.length} keys`);
    assert.ok(keys.length >= 3000, `${keys.length} keys collected meanwhile: full pages are followed`);
    assert.ok(!client.isClosed && client.network.peers.length === 1, "the link stays");
  });

  it("paging runs to its deadline across a wall-clock step forward of an hour (monotonic: before, it stopped after the first page)", { timeout: T }, async () => {
    const server = await startServer();
    const clock = new ManualClock(Date.now());
    const client = await startClient([server], { clock });
    nodes.push(server, client);
    // Two full pages, then a last one of 3 keys.
    const pages = pageForever(server, 0, (n) => Array.from({ length: n < 2 ? 1000 : 3 }, (_, i) => `step/${String(n * 1000 + i).padStart(9, "0")}`));
    let answers = 0;
    const step = (message: { type?: string }) => {
      if (message.type !== "queryAck") return;
      // The first answer steps the wall clock; the count lets the test end the query's wait only once all three arrived.
      if (++answers === 1) clock.stepWall(3_600_000);
    };
    client.on("message", step);
    const keys = client.queryKeys("step/", false, 200);
    await waitUntil(() => pages.sent === 3 && answers === 3, 5000, "the three pages asked for and answered");
    client.off("message", step);
    clock.advance(200); // the query's own wait for answers (on the manual clock)
    assert.equal((await keys).length, 2003);
  });
});
