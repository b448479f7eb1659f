/**
 * The store copy (`copy1`, src/node/sync/store-copy.ts) with writes on both
 * sides while it runs, and a new server closed in the middle of one, over
 * real loopback sockets: both servers converge on every record, and a
 * close leaves no rejection and no event behind.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { SyncMessage } from "../src/records/messages.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { signRecord } from "../src/node/record-signer.js";
import { clientIdOf } from "../src/records/peer-record.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LevelStore } from "../src/index.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords, testAuthor } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "sync-copy-heal";
const SMALL_FRAMES = { maxMessageBytes: 64 * 1024 };
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const T0 = Date.now() - 10_000_000;

/** Holds `source`'s answer to the `page`-th copy request until `before` resolves. */
function beforePage(source: ToolDb, page: number, before: (from: PeerSession) => Promise<void>): void {
  const range = source.sync.range!;
  const honest = range.handle.bind(range);
  let pages = 0;
  range.handle = (message: SyncMessage, from: PeerSession) => {
    if (message.type !== "syncCopy" || ++pages !== page) return honest(message, from);
    void before(from).then(() => honest(message, from));
    return undefined;
  };
}

async function record(key: string, tag: string, at: number) {
  return signRecord(await testAuthor(), key, { tag }, at, 0, false);
}

describe("a store copy while both sides change", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("writes on the source before and after the cursor, and a local write on the new server, during the copy: both converge", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    const { db: fresh } = await fx.server(SMALL_FRAMES);
    await seed(source, await signedRecords(2000, "base/", T0));
    const now = Date.now();
    let written = false;
    beforePage(source, 4, async () => {
      // Three pages copied (cursor near "base/1…"): keys before it and after it change, new keys come on both sides.
      await seed(source, [await record("a/new", "s", now), await record("base/0", "newer", now), await record("base/999", "newer", now), await record("z/new", "s", now)]);
      await seed(fresh, [await record("local/1", "f", now), await record("base/1999", "fresh's", now + 1)]);
      written = true;
    });
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.length >= 1, T, "the copy's run");
    assert.ok(written);
    assert.equal(runs[0]!.complete, true, runs[0]!.reason);
    assert.equal(runs[0]!.mode, "copy");
    // The next link goes by the feeds and carries what changed meanwhile, both ways.
    fresh.network.disconnectFrom("127.0.0.1", portOf(source));
    await waitUntil(() => fresh.network.peers.length === 0 && source.network.peers.length === 0, T, "the link to drop");
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.length >= 2, T, "the next run");
    assert.equal(runs[1]!.complete, true, runs[1]!.reason);
    const [a, b] = [await contents(source), await contents(fresh)];
    assert.equal(a.size, 2000 + 3);
    assert.deepEqual(b, a);
    assert.equal(a.get("base/1999"), (await record("base/1999", "fresh's", now + 1)).h);
  });

  it("a new server closed in the middle of a copy: close resolves, no rejection, no run reported after it", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    const { db: fresh } = await fx.server(SMALL_FRAMES);
    await seed(source, await signedRecords(2000, "base/", T0));
    let closed = false;
    const after: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => closed && after.push(run));
    beforePage(source, 3, async () => {
      closed = true;
      await fresh.close();
    });
    await linkServers(fresh, source, T);
    await waitUntil(() => closed && fresh.isClosed, T, "the new server to close");
    await waitUntil(() => source.network.peers.length === 0, T, "the link to drop");
    assert.deepEqual(after, []);
    assert.equal((await contents(source)).size, 2000, "the source's data is intact");
  });

  it("a new server linked to two servers holding the same records: the second copy, all records already here, gives way to ranges instead of spending the peer's budget", { timeout: T }, async () => {
    const records = await signedRecords(3000, "base/", T0);
    const { db: first } = await fx.server(SMALL_FRAMES);
    const { db: second } = await fx.server(SMALL_FRAMES);
    await Promise.all([seed(first, records), seed(second, records)]);
    // Our work on a peer's answers: 2 × (store + slack) a window, so ~2,500 records already here cost a run what it has.
    const { db: fresh } = await fx.server({ ...SMALL_FRAMES, rangeSync: { budget: { scansPerItem: 2 } } });
    const index = fresh.sync.range!.index;
    let pages = 0;
    beforePage(second, 1, () => waitUntil(() => index.size === 3000, T, "the first copy"));
    const range = second.sync.range!;
    const held = range.handle.bind(range);
    range.handle = (message, from) => {
      if (message.type === "syncCopy") pages++;
      return held(message, from);
    };
    // Both copies begin on the empty store: the first server's waits until the second was asked for a page.
    beforePage(first, 1, () => waitUntil(() => pages >= 1, T, "the second copy to begin"));
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    await Promise.all([linkServers(fresh, first, T), linkServers(fresh, second, T)]);
    const secondId = clientIdOf(second.nodeAddress());
    await waitUntil(() => runs.some((r) => r.peer === secondId), T, "the run with the second server");
    const run = runs.find((r) => r.peer === secondId)!;
    console.log(`# second copy: ${pages} pages asked, run ${run.mode} complete=${run.complete} ${run.reason ?? ""}`);
    assert.equal(run.complete, true, run.reason);
    assert.ok(pages <= 4, `${pages} pages of records already here asked for`);
    assert.deepEqual(await contents(fresh), await contents(first));
  });

  it("a LevelDB store with a legacy foreign slot, junk values, and keys whose UTF-16 and UTF-8 orders differ is copied whole, the slot and junk left out, no strike", { timeout: T }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "tooldb-copy-"));
    dirs.push(dir);
    const { db: source } = await fx.server({ ...SMALL_FRAMES, storageAdapter: LevelStore, storageName: join(dir, "db") });
    const records = [...(await signedRecords(600, "base/", T0)), ...(await signedRecords(200, "q\uE000/", T0)), ...(await signedRecords(200, "q\u{10000}/", T0))];
    await seed(source, records);
    // What an older server left: "note\uD800"'s record in the slot of "note\uFFFD"; and values that are no records.
    await source.records.backend.put("note\uD800", JSON.stringify(await record("note\uD800", "old", T0)));
    await source.store.put("base/3x", "not json");
    await source.store.put("base/4x", JSON.stringify({ hello: "world" }));
    const { db: fresh } = await fx.server(SMALL_FRAMES);
    const refused: string[] = [];
    fresh.on("refused", (e) => refused.push(e.reason));
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.length >= 1, T, "the copy's run");
    assert.equal(runs[0]!.complete, true, runs[0]!.reason);
    assert.equal(runs[0]!.mode, "copy");
    assert.deepEqual(refused, []);
    assert.deepEqual(await contents(fresh), new Map(records.map((r) => [r.k, r.h])));
  });
});
