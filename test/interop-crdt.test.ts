/**
 * CRDT interop with npm tool-db 2.6.6, both ways: crdtPut and crdtGet between
 * 2.6.6 nodes and ours (legacy records, since 2.6.6 hashes without the key).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import t from "tool-db";
import { ToolDb, legacyRecordHash, type ToolDbRecord } from "../src/index.js";
import { CounterCrdt, ListCrdt, MapCrdt } from "../src/crdt/index.js";
import { portOf, startServer } from "./helpers/nodes.js";
import { waitFor, withTimeout } from "./helpers/wait.js";
import { startLegacyNode, type LegacyNode } from "./interop/legacy-node.js";

const TOPIC = "test";

async function ourClient(port: number): Promise<ToolDb> {
  const db = new ToolDb({ topic: TOPIC, peers: [{ host: "127.0.0.1", port }], legacyRecords: true, wait: 20, maxReconnectDelay: 200, random: () => 0 });
  const linked = waitFor(db, "peer-connect", 5000);
  await db.ready;
  await linked;
  await db.anonSignIn();
  return db;
}

describe("CRDT interop with tool-db 2.6.6", () => {
  it("2.6.6 -> tooldb-dht: a 2.6.6 client's map, list and counter reach our server verified; our client reads the same values", async () => {
    const server = await startServer({ legacyRecords: true });
    const nodes: LegacyNode[] = [];
    let ours: ToolDb | undefined;
    try {
      const legacy = await startLegacyNode(TOPIC, { peers: [{ host: "127.0.0.1", port: portOf(server) }] });
      nodes.push(legacy);
      const me = legacy.db.userAccount.getAddress()!;
      const map = new t.MapCrdt(me);
      map.SET("name", "shared doc");
      map.SET("drop", 1);
      map.DEL("drop");
      const list = new t.ListCrdt(me);
      list.PUSH("one");
      list.PUSH("three");
      list.INS("two", 1);
      list.DEL(0);
      const counter = new t.CounterCrdt(me);
      counter.ADD(10);
      counter.SUB(3);
      const stored = waitFor(server, "data", 5000, (r) => r.k === "c-count");
      const all = Promise.all(["c-map", "c-list"].map((k) => waitFor(server, "data", 5000, (r) => r.k === k)));
      await legacy.db.putCrdt("c-map", map);
      await legacy.db.putCrdt("c-list", list);
      await legacy.db.putCrdt("c-count", counter);
      const [[record]] = await Promise.all([stored, all]);
      const rec = record as ToolDbRecord;
      assert.equal(rec.c, "LIST", "2.6.6 labels its counters LIST");
      assert.equal(rec.h, legacyRecordHash(rec.v, rec.a, rec.t, rec.n));

      ours = await ourClient(portOf(server));
      const [m, l, c] = [new MapCrdt(ours.userAccount.getAddress()!), new ListCrdt(""), new CounterCrdt("")];
      await ours.getCrdt("c-map", m);
      await ours.getCrdt("c-list", l);
      await ours.getCrdt("c-count", c);
      assert.deepEqual(m.value, map.value);
      assert.deepEqual(l.value, list.value);
      assert.deepEqual(l.value, ["two", "three"]);
      assert.equal(c.value, counter.value);

      // And a 2.6.6 client reads back, from our server, a document our client changed.
      m.SET("edited", "by tooldb-dht");
      const edited = waitFor(server, "data", 5000, (r) => r.k === "c-map" && r.a === ours!.userAccount.getAddress());
      await ours.putCrdt("c-map", m);
      await edited;
      const reader = await startLegacyNode(TOPIC, { peers: [{ host: "127.0.0.1", port: portOf(server) }] });
      nodes.push(reader);
      const theirs = new t.MapCrdt(reader.db.userAccount.getAddress()!);
      await withTimeout(reader.db.getCrdt("c-map", theirs, false, 2000), 5000, "2.6.6 getCrdt");
      assert.deepEqual(theirs.value, { name: "shared doc", edited: "by tooldb-dht" });
    } finally {
      await ours?.close();
      for (const n of nodes) await n.close();
      await server.close();
    }
  });

  it("tooldb-dht -> 2.6.6: our client's crdtPut is stored by a 2.6.6 server and read by a 2.6.6 client; we read a 2.6.6 client's document there", async () => {
    const legacyServer = await startLegacyNode(TOPIC, { server: true });
    const nodes: LegacyNode[] = [legacyServer];
    let ours: ToolDb | undefined;
    try {
      const port = legacyServer.net.port!;
      ours = await ourClient(port);
      const me = ours.userAccount.getAddress()!;
      const map = new MapCrdt(me);
      map.SET("from", "tooldb-dht");
      map.SET("n", 42);
      const list = new ListCrdt(me);
      list.PUSH("x");
      list.PUSH("z");
      list.INS("y", 1);
      const counter = new CounterCrdt(me);
      counter.ADD(2);
      counter.ADD(5);
      const stored = Promise.all(["d-map", "d-list", "d-count"].map((k) => waitFor(legacyServer.store.events, "put", 5000, (key: string) => key === k)));
      await ours.putCrdt("d-map", map);
      await ours.putCrdt("d-list", list);
      await ours.putCrdt("d-count", counter);
      await stored;

      const client = await startLegacyNode(TOPIC, { peers: [{ host: "127.0.0.1", port }] });
      nodes.push(client);
      const them = client.db.userAccount.getAddress()!;
      const [m, l, c] = [new t.MapCrdt(them), new t.ListCrdt(them), new t.CounterCrdt(them)];
      await withTimeout(client.db.getCrdt("d-map", m, false, 2000), 5000, "2.6.6 getCrdt map");
      await withTimeout(client.db.getCrdt("d-list", l, false, 2000), 5000, "2.6.6 getCrdt list");
      await withTimeout(client.db.getCrdt("d-count", c, false, 2000), 5000, "2.6.6 getCrdt counter");
      assert.deepEqual(m.value, map.value);
      assert.deepEqual(l.value, ["x", "y", "z"]);
      assert.equal(c.value, 7);

      // A 2.6.6 client's own document on the 2.6.6 server: our getCrdt verifies the legacy record and reads it.
      const theirs = new t.MapCrdt(them);
      theirs.SET("from", "2.6.6");
      const storedTheirs = waitFor(legacyServer.store.events, "put", 5000, (key: string) => key === "e-map");
      await client.db.putCrdt("e-map", theirs);
      await storedTheirs;
      const read = new MapCrdt("");
      await ours.getCrdt("e-map", read);
      assert.deepEqual(read.value, { from: "2.6.6" });
    } finally {
      await ours?.close();
      for (const n of nodes) await n.close();
    }
  });
});
