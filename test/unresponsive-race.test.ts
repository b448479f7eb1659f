/**
 * A client's query or acknowledged put reaches server S2 twice: from the
 * client, and first from server S1, which passed it on under the same id.
 * S2 dropped the client's own copy as a duplicate and never answered it, so
 * the client took the honest S2 for unresponsive and dropped it (found in
 * review). A client's own request is answered whatever came first.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, ToolDb } from "../src/index.js";
import { FAST, closeAll, linkServers, portOf, startServer, waitUntil } from "./helpers/nodes.js";

describe("a client's request passed on by one server reaches another first", () => {
  const nodes: ToolDb[] = [];
  afterEach(async () => closeAll(...nodes.splice(0)));

  for (const kind of ["query", "put"] as const) {
    it(`${kind}: the other server still answers the client, which keeps it`, { timeout: 60_000 }, async () => {
      const s1 = await startServer({ topic: "race" });
      const s2 = await startServer({ topic: "race" });
      nodes.push(s1, s2);
      await linkServers(s1, s2);
      const proven = (a: ToolDb, b: ToolDb) => [...a.network.serverPeers].some((s) => s.address === b.nodeAddress() && s.provenServer);
      await waitUntil(() => proven(s1, s2) && proven(s2, s1), 5000, "the servers proven to each other");
      const client = new ToolDb({ topic: "race", ...FAST, outboxRetryInterval: 500, unresponsiveTimeout: 3000, peers: [{ host: "127.0.0.1", port: portOf(s1) }, { host: "127.0.0.1", port: portOf(s2) }] });
      nodes.push(client);
      await client.ready;
      await waitUntil(() => client.network.peers.length === 2, 5000, "the client linked to both");
      const refusals: RefusalEvent[] = [];
      client.on("refused", (e) => refusals.push(e));
      // The client's link to S2 is slower than S1's (a far client, servers side by side): 200 ms more.
      const toS2 = [...client.network.serverPeers].find((s) => s.address === s2.nodeAddress())!;
      const send = toS2.sendRaw.bind(toS2);
      toS2.sendRaw = (frame: string, type?: string) => {
        if (type !== kind) return send(frame, type);
        setTimeout(() => send(frame, type), 200);
        return true;
      };
      if (kind === "query") for (let i = 0; i < 3; i++) await client.queryKeys("x", false, 500);
      else for (let i = 0; i < 3; i++) await client.putData(`k${i}`, i, false, { ack: 1, timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 4000)); // past unresponsiveTimeout
      assert.deepEqual(refusals.filter((e) => e.code === ErrorCode.UNRESPONSIVE), [], "S2 kept");
      assert.equal(client.network.peers.length, 2);
    });
  }
});
