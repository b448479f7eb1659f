/**
 * CRDT documents over the network: concurrent change lists from several
 * nodes converge on every node; each change list is a signed record verified
 * wherever it enters; custom verificators refuse a CRDT delete on a put, a
 * get reply and a sync; documents are bounded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, signRecord, type RefusalEvent, type ToolDbRecord } from "../src/index.js";
import { CRDT_LIMITS, CounterCrdt, ListCrdt, MapCrdt, type CrdtDocument } from "../src/entries/crdt.js";
import { closeAll, linkServers, startClient, startServer } from "./helpers/nodes.js";
import { waitFor, waitForCount } from "./helpers/wait.js";

const noDeletes = async (msg: ToolDbRecord<any>) => !(Array.isArray(msg.v) && msg.v.some((c: { t?: string }) => c.t === "DEL"));
const customRefusal = (key: string) => (e: RefusalEvent) => e.code === ErrorCode.CUSTOM_VERIFICATION_FAILED && e.key === key;

describe("CRDT documents on the network", () => {
  it("3 nodes: concurrent map, list and counter changes converge everywhere; a merged put collapses the heads", async () => {
    const server = await startServer();
    const alice = await startClient([server]);
    const bob = await startClient([server]);
    try {
      await alice.anonSignIn();
      await bob.anonSignIn();
      const aliceAddress = alice.userAccount.getAddress()!;
      const bobAddress = bob.userAccount.getAddress()!;
      // Concurrent: neither has seen the other's changes.
      const am = new MapCrdt(aliceAddress);
      am.SET("title", "alice's");
      am.SET("colour", "red");
      const bm = new MapCrdt(bobAddress);
      bm.SET("title", "bob's");
      bm.DEL("colour");
      const al = new ListCrdt(aliceAddress);
      al.PUSH("a1");
      al.PUSH("a2");
      const bl = new ListCrdt(bobAddress);
      bl.PUSH("b1");
      const ac = new CounterCrdt(aliceAddress);
      ac.ADD(5);
      const bc = new CounterCrdt(bobAddress);
      bc.ADD(3);
      bc.SUB(1);
      const stored = waitForCount(server, "put", 6, 5000);
      await Promise.all([alice.putCrdt("map", am), bob.putCrdt("map", bm), alice.putCrdt("list", al), bob.putCrdt("list", bl), alice.putCrdt("count", ac), bob.putCrdt("count", bc)]);
      await stored;
      const doc = (await server.records.get("map")) as CrdtDocument;
      assert.equal(doc.heads?.length, 1, "two concurrent signed change lists are kept side by side");

      const views = async (db: typeof server) => {
        const [m, l, c] = [new MapCrdt(""), new ListCrdt(""), new CounterCrdt("")];
        await db.getCrdt("map", m);
        await db.getCrdt("list", l);
        await db.getCrdt("count", c);
        return { map: m.value, list: l.value, count: c.value };
      };
      const onServer = await views(server);
      assert.equal(onServer.count, 7);
      assert.deepEqual(onServer.list.slice().sort(), ["a1", "a2", "b1"]);
      // A node that had neither (a third client) gets the whole document with one crdtGet, every head verified.
      const carol = await startClient([server]);
      try {
        assert.deepEqual(await views(carol), onServer);
        assert.equal(((await carol.records.get("map")) as CrdtDocument).heads?.length, 1);
      } finally {
        await carol.close();
      }
      // alice and bob hold only their own list, yet getCrdt asks the server (a fresh read): the
      // other's head arrives verified with the answer, and the document read is the merge.
      for (const db of [alice, bob]) {
        const own = db.userAccount.getAddress()!;
        const other = waitFor(db, "data", 5000, (r) => r.k === "list" && r.a !== own);
        const view = new ListCrdt(own);
        await db.getCrdt("list", view);
        assert.deepEqual(view.value, onServer.list);
        await other;
      }

      // alice merged everything and puts again: her list subsumes both heads, the server keeps one.
      const merged = new MapCrdt(aliceAddress);
      await alice.getCrdt("map", merged);
      merged.SET("done", true);
      const collapsed = waitFor(server, "data", 5000, (r) => r.k === "map");
      await alice.putCrdt("map", merged);
      await collapsed;
      const after = (await server.records.get("map")) as CrdtDocument;
      assert.equal(after.heads, undefined);
      assert.deepEqual(new MapCrdt("", after.v as never).value, merged.value);
    } finally {
      await closeAll(alice, bob, server);
    }
  });

  it("a custom verificator refuses a CRDT delete on a put, a get reply and a sync", async () => {
    const strict = await startServer();
    const open = await startServer();
    const writer = await startClient([strict]);
    try {
      await writer.anonSignIn();
      const address = writer.userAccount.getAddress()!;
      strict.addCustomVerification("todo", noDeletes);

      // A put: the strict server takes a list without deletes, refuses the one with a delete.
      const list = new MapCrdt(address);
      list.SET("milk", true);
      list.SET("eggs", true);
      const first = waitFor(strict, "data", 5000, (r) => r.k === "todo");
      await writer.putCrdt("todo", list);
      await first;
      list.DEL("eggs");
      const refusedPut = waitFor(strict, "refused", 5000, customRefusal("todo"));
      await writer.putCrdt("todo", list);
      const [event] = (await refusedPut) as [RefusalEvent];
      assert.match(event.reason, /CustomVerificationFailed/);
      const kept = new MapCrdt("");
      await strict.getCrdt("todo", kept);
      assert.deepEqual(kept.value, { milk: true, eggs: true }, "the delete did not reach the strict server's document");

      // A get reply: the open server holds a list with a delete; a reader with the rule refuses the reply.
      await open.anonSignIn();
      const withDelete = new MapCrdt(open.userAccount.getAddress()!);
      withDelete.SET("x", 1);
      withDelete.DEL("x");
      await open.putCrdt("todo-remote", withDelete);
      const reader = await startClient([open]);
      try {
        reader.addCustomVerification("todo", noDeletes);
        const refusedGet = waitFor(reader, "refused", 5000, customRefusal("todo-remote"));
        const into = new MapCrdt("");
        assert.equal(await reader.getCrdt("todo-remote", into, false, 500), null);
        await refusedGet;
        assert.deepEqual(into.value, {});
      } finally {
        await reader.close();
      }

      // A sync: the strict server links to the open one and catches up; the document with a delete is refused.
      const fine = new MapCrdt(open.userAccount.getAddress()!);
      fine.SET("y", 2);
      await open.putCrdt("todo-fine", fine);
      const refusedSync = waitFor(strict, "refused", 5000, customRefusal("todo-remote"));
      const synced = waitFor(strict, "data", 5000, (r) => r.k === "todo-fine");
      await linkServers(strict, open);
      await refusedSync;
      await synced;
      assert.equal(await strict.records.get("todo-remote"), undefined);
    } finally {
      await closeAll(writer, strict, open);
    }
  });

  it("bounded: a change list over the limit and a document with too many concurrent heads are refused with a reason", async () => {
    const db = await startServer();
    try {
      await db.anonSignIn();
      const account = db.userAccount;
      const refusals: RefusalEvent[] = [];
      db.on("refused", (e) => refusals.push(e));
      const tooMany = Array.from({ length: CRDT_LIMITS.maxChanges + 1 }, (_, i) => ({ t: "ADD", v: 1, a: "x", i }));
      const big = await signRecord(account, "big", tooMany, Date.now(), 0, false, "COUNTER");
      assert.equal(await db.acceptRecord(big), undefined);
      assert.match(refusals.at(-1)!.reason, /InvalidData: change list of 20001 changes is over the limit of 20000/);

      for (let i = 0; i < CRDT_LIMITS.maxHeads; i++) {
        const head = await signRecord(account, "wide", [{ t: "ADD", v: 1, a: "x", i }], Date.now(), 0, false, "COUNTER");
        assert.ok(await db.acceptRecord(head));
      }
      const one = await signRecord(account, "wide", [{ t: "ADD", v: 1, a: "y", i: 0 }], Date.now(), 0, false, "COUNTER");
      await db.acceptRecord(one);
      assert.match(refusals.at(-1)!.reason, /has 32 concurrent change lists; merge them \(getCrdt\) and put again/);
      const counter = new CounterCrdt("");
      await db.getCrdt("wide", counter);
      assert.equal(counter.value, CRDT_LIMITS.maxHeads);
      // A writer that merged them all collapses the document into one head.
      const local = new CounterCrdt(account.getAddress()!);
      await db.getCrdt("wide", local);
      local.ADD(1);
      await db.putCrdt("wide", local);
      assert.equal(((await db.records.get("wide")) as CrdtDocument).heads, undefined);
    } finally {
      await db.close();
    }
  });
});
