/**
 * Issue 20, point 3: no hop limit a live mesh can reach. A put relayed along
 * a chain of 24 servers reaches the last one: each relay adds its sender to
 * `to`, and `to` was refused past 16 entries, so an update stopped after 15
 * hops. Server sync is off, so only relay can carry it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { LIMITS } from "../../src/records/messages.js";
import type { ToolDb } from "../../src/index.js";
import { closeAll, linkServers, startClient, startServer, waitUntil } from "../helpers/nodes.js";

const CHAIN = 24;

describe("relay along a long chain of servers", { timeout: 60_000 }, () => {
  const nodes: ToolDb[] = [];
  after(async () => closeAll(...nodes));

  it(`a put reaches the end of a chain of ${CHAIN} servers, and no frame carries more than ${LIMITS.maxHops} hops`, async () => {
    for (let i = 0; i < CHAIN; i++) nodes.push(await startServer({ serverSync: false }));
    for (let i = 0; i + 1 < CHAIN; i++) await linkServers(nodes[i]!, nodes[i + 1]!);
    let longest = 0;
    for (const s of nodes) {
      const handle = s.handleMessage.bind(s);
      s.handleMessage = (message, from) => {
        if (message.type === "put") longest = Math.max(longest, message.to.length);
        return handle(message, from);
      };
    }
    const client = await startClient([nodes[0]!]);
    nodes.push(client);
    await client.putData("far", "away");
    const last = nodes[CHAIN - 1]!;
    await waitUntil(async () => (await last.records.get("far")) !== undefined, 10_000, "the put at the end of the chain");
    assert.equal((await last.records.get("far"))?.v, "away");
    assert.ok(longest <= LIMITS.maxHops, `a put carried ${longest} hops`);
  });
});
