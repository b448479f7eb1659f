/**
 * Waiting for a get's replies: each peer asked counts once, however many
 * records it sends under the id. Before, a peer replaying `asked` versions
 * of the key (or a 2.6.6 server relaying several servers' replies under one
 * id) ended the wait at once, before the other servers answered.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { MemoryStore, ToolDb, type ToolDbRecord } from "../src/index.js";
import { awaitNewest } from "../src/node/get-replies.js";
import type { PeerSession } from "../src/network/peer-session.js";

describe("a get's replies", { timeout: 10_000 }, () => {
  const db = new ToolDb({ topic: "get-replies", storageAdapter: MemoryStore, storageName: "get-replies" });
  after(() => db.close());

  it("count one per peer: a second record from the same peer does not end the wait", async () => {
    await db.ready;
    const versions: ToolDbRecord[] = [];
    for (const v of [1, 2, 3]) {
      await db.putData("asked", v);
      versions.push((await db.records.get("asked"))!);
    }
    const [v1, v2, v3] = versions as [ToolDbRecord, ToolDbRecord, ToolDbRecord];
    const peer = (clientId: string) => ({ clientId }) as unknown as PeerSession;
    const put = (data: ToolDbRecord) => ({ type: "put" as const, id: "get-1", to: [], data });
    let result: ToolDbRecord | undefined | null = null;
    awaitNewest(db, "get-1", "asked", 5000, (record) => (result = record)).asked(2);
    db.requests.resolve("get-1", put(v1), peer("a"));
    db.requests.resolve("get-1", put(v2), peer("a"));
    assert.equal(result, null, "one peer answered (twice): still waiting for the other");
    db.requests.resolve("get-1", put(v3), peer("b"));
    assert.equal((result as ToolDbRecord | null)?.h, v3.h, "both answered: the newest wins");
  });
});
