/**
 * Replies to one request id from several peers: queryKeys collects "every
 * peer that answers" (and what a server passes on from the servers it
 * forwarded the query to, under the same id), and doFunction waits past a
 * NOT_FOUND for a peer that has the function. The protocol deduplicated
 * queryAck and functionReturn by type and id, so all but the first reply
 * were dropped before the request saw them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { closeAll, linkServers, startClient, startServer } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";
import type { ToolDb } from "../src/index.js";
import type { ToolDbMessage } from "../src/records/messages.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { parseMessage } from "../src/records/parse-message.js";
import { LIMITS } from "../src/records/messages.js";

/** A modified server: answers every function call `times` times with NOT_FOUND, whatever it holds. */
function sayNotFound(server: ToolDb, times: number): void {
  const honest = server.handleMessage.bind(server);
  server.handleMessage = (message: ToolDbMessage, from: PeerSession) => {
    if (message.type !== "function") return honest(message, from);
    for (let i = 0; i < times; i++) from.send({ type: "functionReturn", id: message.id, code: "NOT_FOUND", return: "no such function" });
  };
}

describe("replies from several servers under one request id", { timeout: 30_000 }, () => {
  it("queryKeys collects the keys of both servers", { timeout: 20_000 }, async () => {
    const a = await startServer({ topic: "reply-dedup-q" });
    const b = await startServer({ topic: "reply-dedup-q" });
    const client = await startClient([a, b], { topic: "reply-dedup-q" });
    try {
      await a.putData("q-a", 1);
      await b.putData("q-b", 2);
      // Both servers answer at once; the wait ends on the timeout.
      const keys = await client.queryKeys("q-", false, 1500);
      assert.deepEqual(keys, ["q-a", "q-b"]);
    } finally {
      await closeAll(client, a, b);
    }
  });

  it("a server passes on the keys of the server it forwarded the query to", { timeout: 20_000 }, async () => {
    const a = await startServer({ topic: "reply-dedup-fw", serverSync: false });
    const b = await startServer({ topic: "reply-dedup-fw", serverSync: false });
    await linkServers(a, b);
    const client = await startClient([a], { topic: "reply-dedup-fw" });
    try {
      await a.putData("fw-a", 1);
      await b.putData("fw-b", 2);
      // Written after the link, so neither server relays to the other: b's key reaches the client only as a forwarded queryAck.
      assert.equal(await a.records.get("fw-b"), undefined, "b's key is b's alone");
      const keys = await client.queryKeys("fw-", false, 1500);
      assert.deepEqual(keys, ["fw-a", "fw-b"]);
    } finally {
      await closeAll(client, a, b);
    }
  });

  // First case: an honest server without the function answers NOT_FOUND once. Second: a modified
  // server answers NOT_FOUND three times (counted once a peer, it cannot end the wait for the other).
  for (const [name, notFoundReplies] of [["after another said NOT_FOUND", 0], ["after a peer repeated NOT_FOUND", 3]] as const) {
    it(`doFunction gets the result of the server that has the function ${name}`, { timeout: 20_000 }, async () => {
      const topic = `reply-dedup-f${notFoundReplies}`;
      const a = await startServer({ topic });
      const b = await startServer({ topic });
      const client = await startClient([a, b], { topic });
      try {
        if (notFoundReplies > 0) sayNotFound(a, notFoundReplies);
        // b answers only once the client has a's NOT_FOUND, so the order is fixed.
        const notFound = waitFor(client, "message", 5000, (m) => m.type === "functionReturn");
        b.addServerFunction("only-b", async () => {
          await notFound;
          return "from b";
        });
        assert.deepEqual(await client.doFunction("only-b", {}, 3000), { code: "OK", return: "from b" });
      } finally {
        await closeAll(client, a, b);
      }
    });
  }

  it("a queryAck key longer than a key may be is dropped (a tool-db 2.6.6 server is not struck for it)", () => {
    const keys = (key: string) => (parseMessage(JSON.stringify({ type: "queryAck", id: "q1", to: [], keys: ["ok", key] })) as { keys: string[] }).keys;
    assert.deepEqual(keys("k".repeat(LIMITS.maxKeyLength)), ["ok", "k".repeat(LIMITS.maxKeyLength)]);
    assert.deepEqual(keys("k".repeat(LIMITS.maxKeyLength + 1)), ["ok"]);
  });
});
