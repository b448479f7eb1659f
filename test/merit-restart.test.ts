/**
 * The records that earn a client's links merit (src/node/merit-records.ts)
 * across a restart on a persisted store. The list was in memory only: a
 * client restarted on its LevelDB store held its stable data (config,
 * profiles) and re-read it, and the honest server re-delivering it earned no
 * merit in the new run, so it took its turn with fakes again until a newer
 * version arrived. close() now saves the list in the node's key store and the
 * next start takes it (read and deleted before any link): a run that ends
 * without close() leaves none, a record handed out before the close stays
 * out, and a server keeps none. Real LevelDB stores on disk, real sockets on
 * loopback.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { setLogSink } from "../src/base/logger.js";
import { LevelStore, MemoryStore } from "../src/stores/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { MERIT_RECORDS_KEY, MeritRecords } from "../src/node/merit-records.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "merit-restart";
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tooldb-merit-restart-"));
  dirs.push(dir);
  return dir;
}
const hash = (i: number) => i.toString(16).padStart(64, "0");

describe("link merit for held records across a restart", () => {
  const { nodes } = teardownEach();
  after(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("a client closed and reopened on its LevelDB store credits the honest server re-delivering a record it held before the restart", { timeout: 60_000 }, async () => {
    const honest = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: TOPIC, ...FAST });
    nodes.push(honest);
    await honest.ready;
    await honest.putData("config", "stable");
    const opts: Partial<ToolDbOptions> = { topic: TOPIC, ...FAST, storageAdapter: LevelStore, storageName: join(await tempDir(), "client"), peers: [{ host: "127.0.0.1", port: portOf(honest) }] };
    const session = (db: ToolDb) => db.network.peers.find((p) => p.address === honest.nodeAddress()) as PeerSession | undefined;

    const first = new ToolDb(opts);
    nodes.push(first);
    await first.ready;
    await waitUntil(() => session(first) !== undefined, 5000, "the client to link the server");
    // The first read: a record new to the client, delivered by the honest server (it enters the list).
    assert.equal(await first.getData("config", false, 2000), "stable");
    const h = (await first.records.get("config"))!.h;
    assert.ok(first.merit.proves(h));
    await first.close();

    const second = new ToolDb(opts);
    nodes.push(second);
    await second.ready;
    assert.equal((await second.records.get("config"))?.h, h, "the client holds the record from before the restart");
    await waitUntil(() => session(second) !== undefined, 5000, "the restarted client to link the server");
    const link = session(second)!;
    link.servedAt = 0;
    // The app re-reads its config, which it holds and never gave any peer: the server re-delivering it proves it serves.
    assert.equal(await second.getData("config", false, 2000), "stable");
    assert.ok(link.servedAt > 0, "the honest server re-delivering a record held from before the restart earned no merit");
  });

  it("a server closed and reopened on its LevelDB store keeps no list and loses the client nothing: the client's list credits it after it is back", { timeout: 60_000 }, async () => {
    const name = join(await tempDir(), "server");
    const serverOpts: Partial<ToolDbOptions> = { server: true, host: "127.0.0.1", port: 0, topic: TOPIC, ...FAST, storageAdapter: LevelStore, storageName: name };
    const first = new ToolDb(serverOpts);
    nodes.push(first);
    await first.ready;
    await first.putData("config", "stable");
    const port = portOf(first);
    const client = new ToolDb({ topic: TOPIC, ...FAST, peers: [{ host: "127.0.0.1", port }] });
    nodes.push(client);
    await client.ready;
    const session = () => client.network.peers.find((p) => p.port === port) as PeerSession | undefined;
    await waitUntil(() => session() !== undefined, 5000, "the client to link the server");
    assert.equal(await client.getData("config", false, 2000), "stable");
    await first.close();

    const second = new ToolDb({ ...serverOpts, port });
    nodes.push(second);
    await second.ready;
    assert.equal(second.merit.size, 0, "a server keeps no merit records");
    await waitUntil(() => session() !== undefined && !session()!.connection.closed, 10_000, "the client to link the restarted server");
    const link = session()!;
    link.servedAt = 0;
    assert.equal(await client.getData("config", false, 2000), "stable");
    assert.ok(link.servedAt > 0, "the restarted server re-delivering a record the client holds earned no merit");
  });

  it("the list is saved whole but for what was handed out, taken (deleted) at start so a run ended without close() leaves none, bounded, and dropped by a server", { timeout: 30_000 }, async () => {
    const name = join(await tempDir(), "keys");
    let store = new LevelStore(undefined, name);
    await store.ready;
    const merit = new MeritRecords(8);
    for (let i = 0; i < 3; i++) merit.delivered(hash(i));
    merit.handedOut(hash(1));
    assert.equal(await merit.save(store), true);
    await store.close();

    store = new LevelStore(undefined, name);
    await store.ready;
    const loaded = new MeritRecords(8);
    await loaded.load(store, true);
    assert.deepEqual([0, 1, 2].map((i) => loaded.proves(hash(i))), [true, false, true], "the list lost a record or regained one handed out");
    assert.equal(await store.get(MERIT_RECORDS_KEY), undefined, "the list was left in the store after it was taken");
    // A run that ends without close() (a crash) saved nothing: the next starts empty, not with the list taken before.
    const afterCrash = new MeritRecords(8);
    await afterCrash.load(store, true);
    assert.equal(afterCrash.size, 0);

    // Bounded: the most recent `capacity` hashes are saved, and no more are loaded from a longer list.
    const full = new MeritRecords(8);
    for (let i = 0; i < 100; i++) full.delivered(hash(i));
    await full.save(store);
    assert.equal((JSON.parse((await store.get(MERIT_RECORDS_KEY))!) as string[]).length, 8);
    await store.put(MERIT_RECORDS_KEY, JSON.stringify([...Array(50).keys()].map(hash)));
    const bounded = new MeritRecords(8);
    await bounded.load(store, true);
    assert.equal(bounded.size, 8);
    assert.ok(bounded.proves(hash(49)) && !bounded.proves(hash(0)));
    // A saved list that is not one loads nothing.
    for (const junk of ["not json", '{"h":1}', '["short", 7]']) {
      await store.put(MERIT_RECORDS_KEY, junk);
      const none = new MeritRecords(8);
      await none.load(store, true);
      assert.equal(none.size, 0, `loaded from ${junk}`);
    }
    // A server on a store a client used takes the list and keeps none (it sends every record on).
    await full.save(store);
    const server = new MeritRecords(8);
    await server.load(store, false);
    assert.equal(server.size, 0);
    assert.equal(await store.get(MERIT_RECORDS_KEY), undefined);
    // An empty list at close deletes a saved one.
    await full.save(store);
    assert.equal(await new MeritRecords(8).save(store), true);
    assert.equal(await store.get(MERIT_RECORDS_KEY), undefined);
    await store.close();
  });

  it("a key store that fails the save at close: close() resolves, the failure is logged on the node's debug logger, no unhandled rejection", { timeout: 30_000 }, async () => {
    // A store whose put and del of the list reject (a full disk, a store closed under the node).
    const { lines, unhandled } = await capturing(async () => {
      // Empty at close (the saved list is deleted) and not (it is written): both fail.
      for (const held of [false, true]) {
        const db = new ToolDb({ topic: TOPIC, ...FAST, debug: true, storageAdapter: failingOn(["put", "del"]), storageName: `failing-${held}` });
        await db.ready;
        if (held) db.merit.delivered(hash(1));
        await db.close();
      }
    });
    const failed = lines.filter((l) => /merit records not saved at close/.test(l));
    assert.equal(failed.length, 2, `the failed saves were not logged: ${JSON.stringify(lines.slice(-5))}`);
    assert.ok(failed.every((l) => l.startsWith("tooldb:node:client ") && l.includes("disk full")), failed.join("\n"));
    assert.deepEqual(unhandled, []);
  });

  it("a key store whose get or del of the list rejects at start: the node starts with an empty list, the failure is logged on the node's debug logger, no unhandled rejection", { timeout: 30_000 }, async () => {
    // The get fails, or the get finds a saved list and its delete fails (the list must not be used then).
    const { lines, unhandled } = await capturing(async () => {
      for (const op of ["get", "del"] as const) {
        const db = new ToolDb({ topic: TOPIC, ...FAST, debug: true, storageAdapter: failingOn([op], JSON.stringify([hash(1)])), storageName: `failing-start-${op}` });
        await db.ready;
        assert.equal(db.merit.size, 0, `a list was kept after its ${op} failed`);
        assert.equal(db.merit.proves(hash(1)), false);
        await db.close();
      }
    });
    const failed = lines.filter((l) => /merit records not taken at start/.test(l));
    assert.equal(failed.length, 2, `the failures at start were not logged: ${JSON.stringify(lines.slice(-5))}`);
    assert.ok(failed.every((l) => l.startsWith("tooldb:node:client ") && l.includes("disk full")), failed.join("\n"));
    assert.deepEqual(unhandled, []);
  });
});

/** A memory key store whose `ops` on the merit list reject ("disk full"); its get of the list finds `saved`, if given. */
function failingOn(ops: ("get" | "put" | "del")[], saved?: string): typeof MemoryStore {
  const fail = (op: "get" | "put" | "del", key: string) => key === MERIT_RECORDS_KEY && ops.includes(op);
  const disk = () => Promise.reject(new Error("disk full"));
  return class FailingStore extends MemoryStore {
    protected override _get(key: string): Promise<string | undefined> {
      if (fail("get", key)) return disk();
      return key === MERIT_RECORDS_KEY && saved !== undefined ? Promise.resolve(saved) : super._get(key);
    }
    protected override _put(key: string, value: string): Promise<void> {
      return fail("put", key) ? disk() : super._put(key, value);
    }
    protected override _del(key: string): Promise<void> {
      return fail("del", key) ? disk() : super._del(key);
    }
  };
}

/** Runs `fn` with the debug log and unhandled rejections captured. */
async function capturing(fn: () => Promise<void>): Promise<{ lines: string[]; unhandled: unknown[] }> {
  const lines: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  setLogSink((namespace, args) => lines.push(`${namespace} ${args.map(String).join(" ")}`));
  try {
    await fn();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    setLogSink(undefined);
    process.off("unhandledRejection", onUnhandled);
  }
  return { lines, unhandled };
}
