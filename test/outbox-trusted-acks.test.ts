/**
 * Fake servers (a fresh key proven each, answering what a client's server
 * watch asks) that acknowledge a client's puts and drop them. A `putAck`
 * took the write out of the client's outbox, so a write acknowledged only by
 * fakes was lost once the client closed before a real server was linked:
 * the client holds it in its own store, and range sync carries nothing from
 * clients. The outbox now lets a write go only once a server the client
 * trusts confirmed it (listed by the operator, or one that earned merit:
 * src/node/server-trust.ts); the fakes' confirmations still count for
 * `ack: n`. Real sockets on loopback, the client on LevelDB on disk.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb, LevelStore, type ToolDbOptions } from "../src/index.js";
import { DhtPeering } from "../src/peering/dht-peering.js";
import { StubSource } from "./helpers/stub-source.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { type HostileServer, behavingFake } from "./helpers/hostile-server.js";
import { teardownEach } from "./helpers/teardown.js";
import { scratchStores } from "./helpers/scratch-stores.js";

const TOPIC = "outbox-trusted-acks";
const WRITES = 8;
const HONEST = "127.0.1.1";
const freshStore = scratchStores("tooldb-outbox-trust-");

describe("writes acknowledged only by fake servers", () => {
  const { nodes, stops, closers } = teardownEach();

  const putsOf = (fake: HostileServer) => fake.received.filter((f) => f.type === "put").length;

  async function client(name: string, fakes: HostileServer[], extra: Partial<ToolDbOptions> = {}, links = 3) {
    const db = new ToolDb({ topic: TOPIC, ...FAST, storageAdapter: LevelStore, storageName: name, outboxRetryInterval: 100, ...extra });
    nodes.push(db);
    await db.ready;
    // What the outbox restored from the store, counted before any link (a listed server dials at start) can confirm a write.
    const restored = db.outbox.size;
    const source = new StubSource(fakes.map((f) => ({ host: f.host, port: f.port })));
    const peering = new DhtPeering(db, source, TOPIC, { maxConnections: links, dialRetries: 3, penaltyMs: 5000, random: () => 0, rotateIntervalMs: 0 });
    stops.push(() => peering.stop());
    await waitUntil(() => fakes.every((f) => f.links.size === 1), 5000, "the client to link the fakes");
    return { db, source, restored };
  }

  /** A client that linked only the fakes writes WRITES keys (some asking `ack: 1`), all acknowledged by the fakes, and closes. */
  async function writeToFakesAndClose(name: string, fakes: HostileServer[]): Promise<Map<string, string>> {
    const { db } = await client(name, fakes);
    const confirmed = new Set<string>();
    db.on("put-confirmed", ({ h }) => confirmed.add(h));
    const hashes = new Map<string, string>();
    for (let i = 0; i < WRITES; i++) {
      // `ack: 1` counts the fakes' confirmations as before: the put resolves.
      await db.putData(`w${i}`, `value ${i}`, false, i % 2 === 0 ? { ack: 1, timeoutMs: 5000 } : {});
      hashes.set(`w${i}`, (await db.records.get(`w${i}`))!.h);
    }
    await waitUntil(() => [...hashes.values()].every((h) => confirmed.has(h)), 5000, "the fakes to acknowledge every write");
    const pending = db.outbox.pending();
    assert.deepEqual(pending.map((p) => [p.key, p.provisional]), [...hashes.keys()].map((k) => [k, true]), "writes confirmed only by fakes left the outbox");
    await db.close();
    return hashes;
  }

  async function holdsEvery(server: ToolDb): Promise<boolean> {
    for (let i = 0; i < WRITES; i++) if ((await server.records.get(`w${i}`))?.v !== `value ${i}`) return false;
    return true;
  }

  for (const how of ["merit", "db.peers", "bootstrap-list"] as const) {
    it(`the client closes and reopens before a real server is linked; the writes reach the real server once it is trusted (${how})`, { timeout: 60_000 }, async () => {
      const honest = new ToolDb({ server: true, host: HONEST, port: 0, topic: TOPIC, ...FAST });
      nodes.push(honest);
      await honest.ready;
      await honest.putData("held", "by the real server");
      const fakes = await Promise.all([behavingFake(TOPIC, closers), behavingFake(TOPIC, closers)]);
      const name = freshStore();
      const hashes = await writeToFakesAndClose(name, fakes);
      const before = fakes.map(putsOf);

      // Reopened on its store; the fakes found first again. The writes wait in the persisted outbox.
      const listed = how === "db.peers" ? { peers: [{ host: HONEST, port: portOf(honest) }] } : {};
      const { db, source, restored } = await client(name, fakes, listed);
      // With db.peers the real server is dialed at start and may already have confirmed some: count what was restored.
      assert.equal(restored, WRITES, "the outbox lost writes across the restart");
      assert.ok(db.outbox.pending().every((p) => p.provisional));
      const session = () => db.network.peers.find((p) => p.address === honest.nodeAddress() && !p.connection.closed);
      if (how === "merit") source.announce({ host: HONEST, port: portOf(honest) });
      if (how === "bootstrap-list") source.announce({ host: HONEST, port: portOf(honest) }, "bootstrap-list");
      await waitUntil(() => session() !== undefined, 5000, "the client to link the real server");
      if (how === "merit") {
        // Unlisted, it has earned nothing yet: the writes wait. It serves a read the client could not answer itself.
        assert.equal(await honest.records.get("w0"), undefined, "a write went to an unlisted server with no merit");
        assert.equal(await db.getData("held", false, 3000), "by the real server");
        assert.ok(session()!.servedAt > 0);
      }
      await waitUntil(() => holdsEvery(honest), 10_000, "every write at the real server");
      await waitUntil(() => db.outbox.size === 0, 5000, "the real server's confirmations to empty the outbox");
      // Confirmed by the fakes already: not sent to them again after the restart.
      assert.deepEqual(fakes.map(putsOf), before, "writes confirmed by the fakes went to them again");
      // The victim's own data is intact.
      for (let i = 0; i < WRITES; i++) {
        const record = await db.records.get(`w${i}`);
        assert.equal(record?.v, `value ${i}`);
        assert.equal(record?.h, hashes.get(`w${i}`));
      }
    });
  }

  it("an unlisted server's confirmations count once its link earns merit: the writes it confirmed before leave the outbox", { timeout: 30_000 }, async () => {
    const honest = new ToolDb({ server: true, host: HONEST, port: 0, topic: TOPIC, ...FAST });
    nodes.push(honest);
    await honest.ready;
    await honest.putData("held", "by the real server");
    const db = new ToolDb({ topic: TOPIC, ...FAST, storageName: `outbox-trust-${Math.random()}`, outboxRetryInterval: 100 });
    nodes.push(db);
    await db.ready;
    db.network.connectTo(HONEST, portOf(honest)); // dialed by the app, not listed
    await waitUntil(() => db.network.peers.length === 1, 5000, "the client to link the server");
    for (let i = 0; i < 3; i++) await db.putData(`m${i}`, i, false, { ack: 1, timeoutMs: 5000 });
    assert.deepEqual(db.outbox.pending().map((p) => p.provisional), [true, true, true], "confirmed by a server with no merit, the writes left");
    assert.equal(db.outbox.unconfirmed, 0);
    assert.equal(await db.getData("held", false, 3000), "by the real server");
    await waitUntil(() => db.outbox.size === 0, 5000, "the outbox to let the writes go");
  });

  it("bounded: writes confirmed only by fakes fill at most outboxCapacity and are dropped first, without outbox-overflow", { timeout: 30_000 }, async () => {
    const fake = await behavingFake(TOPIC, closers);
    const db = new ToolDb({ topic: TOPIC, ...FAST, storageAdapter: LevelStore, storageName: freshStore(), outboxCapacity: 3, outboxRetryInterval: 100 });
    nodes.push(db);
    await db.ready;
    const overflowed: string[] = [];
    db.on("outbox-overflow", (key) => overflowed.push(key));
    // Dialed by the app, not listed: an unlisted server whose link earns nothing (the client only writes).
    db.network.connectTo(fake.host, fake.port);
    await waitUntil(() => db.network.peers.length === 1, 5000, "the client to link the fake");
    const confirmed = new Set<string>();
    db.on("put-confirmed", ({ h }) => confirmed.add(h));
    for (let i = 0; i < 5; i++) await db.putData(`a${i}`, i, false, { ack: 1, timeoutMs: 5000 });
    assert.equal(confirmed.size, 5);
    assert.deepEqual(db.outbox.pending().map((p) => [p.key, p.provisional]), [["a2", true], ["a3", true], ["a4", true]]);
    // The fake stops acknowledging: writes no server confirmed push out the confirmed ones first.
    const acks = fake.onFrame;
    fake.onFrame = (link, frame) => frame.type !== "put" && acks(link, frame);
    for (let i = 0; i < 4; i++) await db.putData(`u${i}`, i);
    assert.deepEqual(db.outbox.pending().map((p) => [p.key, p.provisional]), [["u1", false], ["u2", false], ["u3", false]]);
    assert.deepEqual(overflowed, ["u0"], "only a write no server confirmed is an outbox-overflow");
  });
});
