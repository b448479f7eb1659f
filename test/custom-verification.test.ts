/**
 * addCustomVerification: an app's rule runs after the built-in verification
 * and refuses records on every path they enter: a local put, a put from a
 * peer, a get reply and a server sync.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, isToolDbError, type RefusalEvent, type ToolDbRecord } from "../src/index.js";
import { closeAll, linkServers, startClient, startServer } from "./helpers/nodes.js";
import { waitFor } from "./helpers/wait.js";

const noBanned = async (msg: ToolDbRecord<any>) => !(typeof msg.v === "object" && msg.v !== null && msg.v.banned === true);
const isCustom = (key: string) => (e: RefusalEvent) => e.code === ErrorCode.CUSTOM_VERIFICATION_FAILED && e.key === key;

describe("custom verification", () => {
  it("refuses a local put with a typed error and stores nothing; removing it lets the put through", async () => {
    const db = await startServer();
    try {
      await db.anonSignIn();
      const previous: Array<ToolDbRecord | undefined> = [];
      const id = db.addCustomVerification("post-", async (msg, prev) => {
        previous.push(prev);
        return noBanned(msg);
      });
      assert.equal(id, 1, "ids start at 1, as in tool-db 2.6.6 (an app may test `if (id)`)");
      await db.putData("post-1", { text: "hi" });
      await assert.rejects(db.putData("post-1", { banned: true }), (e) => isToolDbError(e, ErrorCode.CUSTOM_VERIFICATION_FAILED));
      assert.deepEqual(await db.getData("post-1"), { text: "hi" });
      assert.equal(previous[0], undefined, "no previous record for the first put");
      assert.deepEqual(previous[1]?.v, { text: "hi" }, "the verificator sees what is stored");
      await db.putData("other", { banned: true });
      db.removeCustomVerification(id);
      await db.putData("post-1", { banned: true });
      assert.deepEqual(await db.getData("post-1"), { banned: true });
    } finally {
      await db.close();
    }
  });

  it("refuses a put from a peer, a get reply and a sync, with a refused event; a throwing verificator refuses too", async () => {
    const a = await startServer();
    const b = await startServer();
    const writer = await startClient([a]);
    try {
      await writer.anonSignIn();
      // A put from a peer: the server refuses it and does not relay it.
      a.addCustomVerification("post-", noBanned);
      const refusedPut = waitFor(a, "refused", 5000, isCustom("post-put"));
      await writer.putData("post-put", { banned: true });
      await refusedPut;
      assert.equal(await a.records.get("post-put"), undefined);

      // A get reply: server b (no rule, no links yet) holds it, the reader refuses it.
      await b.anonSignIn();
      await b.putData("post-get", { banned: true });
      const reader = await startClient([b]);
      try {
        reader.addCustomVerification("post-", async () => {
          throw new Error("boom");
        });
        const refusedGet = waitFor(reader, "refused", 5000, isCustom("post-get"));
        assert.equal(await reader.getData("post-get", false, 500), null);
        const [event] = (await refusedGet) as [RefusalEvent];
        assert.match(event.reason, /CustomVerificationFailed: .*threw: boom/);
      } finally {
        await reader.close();
      }

      // A sync: a links to b and catches up on b's records; the rule on a refuses the banned one.
      await b.putData("post-sync-bad", { banned: true });
      await b.putData("post-sync-ok", { text: "fine" });
      const refusedSync = waitFor(a, "refused", 5000, isCustom("post-sync-bad"));
      const synced = waitFor(a, "data", 5000, (r) => r.k === "post-sync-ok");
      await linkServers(a, b);
      await refusedSync;
      await synced;
      assert.equal(await a.records.get("post-sync-bad"), undefined, "the refused record is not stored");
      assert.deepEqual((await a.records.get("post-sync-ok"))?.v, { text: "fine" });
    } finally {
      await closeAll(writer, a, b);
    }
  });
});
