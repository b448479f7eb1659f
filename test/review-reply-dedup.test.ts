/**
 * Replies to one request id from several peers: queryKeys collects "every
 * peer that answers", and doFunction waits past a NOT_FOUND for a peer that
 * has the function. The protocol's dedup set keys a queryAck and a
 * functionReturn by type and id only, so the second peer's reply is dropped
 * as a duplicate before the request sees it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { closeAll, linkServers, startClient, startServer } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";

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

  it("doFunction gets the result of the server that has the function after another said NOT_FOUND", { timeout: 20_000 }, async () => {
    const a = await startServer({ topic: "reply-dedup-f" });
    const b = await startServer({ topic: "reply-dedup-f" });
    const client = await startClient([a, b], { topic: "reply-dedup-f" });
    try {
      // b answers only once the client has a's NOT_FOUND, so the order is fixed.
      const notFound = waitFor(client, "message", 5000, (m) => m.type === "functionReturn");
      b.addServerFunction("only-b", async () => {
        await notFound;
        return "from b";
      });
      const result = await client.doFunction("only-b", {}, 3000);
      assert.deepEqual(result, { code: "OK", return: "from b" });
    } finally {
      await closeAll(client, a, b);
    }
  });
});
