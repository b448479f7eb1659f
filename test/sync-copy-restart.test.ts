/**
 * A new server restarted in the middle of a store copy (`copy1`,
 * src/node/sync/store-copy.ts, copy-cursors.ts) resumes the copy where it
 * stopped. The cursor was in memory only: on restart the index held part of
 * the store, so the next run reconciled ranges over the whole store and
 * fetched the rest id by id. Real LevelDB stores on disk, real sockets on
 * loopback; the restart comes after an unclean stop (the index is rebuilt),
 * the harder case, and with a saved cursor behind the pages taken in (a
 * crash between a page's intake and its save). Checked by the copy requests
 * and fetches the source saw, never by timings.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LevelStore, type ToolDb } from "../src/index.js";
import { syncIndexName } from "../src/node/options.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { CopyCursors, MAX_COPY_CURSORS } from "../src/node/sync/copy-cursors.js";
import { SyncIndex } from "../src/node/sync/sync-index.js";
import { createLogger } from "../src/base/logger.js";
import { type AttackFixture, attackFixture } from "./helpers/attack-fixture.js";
import { linkServers, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "sync-copy-restart";
/** Small frames, so that a copy of 2,000 records takes many pages. */
const SMALL_FRAMES = { maxMessageBytes: 64 * 1024 };
const T0 = Date.now() - 10_000_000;
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The copy cursor `db` saved for `peer` (copy-cursors.ts keyspace), read from its open index store. */
async function savedCursor(db: ToolDb, peer: ToolDb): Promise<string | undefined> {
  return db.sync.range!.index.store.get(`v${peer.nodeAddress()}`);
}

/** A source of 2,000 records, a new server on LevelDB that copies four pages of it and stops, unclean. */
async function stoppedCopy(fx: AttackFixture) {
  const { db: source } = await fx.server(SMALL_FRAMES);
  await seed(source, await signedRecords(2000, "base/", T0));
  const dir = mkdtempSync(join(tmpdir(), "tooldb-copy-restart-"));
  dirs.push(dir);
  const opts = { ...SMALL_FRAMES, storageAdapter: LevelStore, storageName: join(dir, "fresh") };
  const { db: first } = await fx.server(opts);
  // The source's side: the `after` of every copy request, and the fetches after the restart.
  const asked: (string | undefined)[][] = [[], []];
  const seen = { phase: 0, fetches: 0 };
  const range = source.sync.range!;
  const honest = range.handle.bind(range);
  range.handle = (message, from) => {
    if (message.type === "syncFetch" && seen.phase === 1) seen.fetches++;
    if (message.type !== "syncCopy") return honest(message, from);
    asked[seen.phase]!.push(message.after);
    if (seen.phase === 0 && asked[0]!.length === 5) {
      // The fifth page is never answered: once the four before it were taken in and their cursor saved (a deadline, for
      // a server that saves none), the new server stops.
      void waitUntil(async () => (await savedCursor(first, source)) === message.after, 20_000, "the cursor saved")
        .catch(() => undefined)
        .then(() => first.close());
      return undefined;
    }
    return honest(message, from);
  };
  await linkServers(first, source, T);
  await waitUntil(() => first.isClosed, T, "the new server to stop");
  await waitUntil(() => source.network.peers.length === 0, T, "the link to drop");
  // An unclean stop as a crash leaves it: the index is rebuilt from the records on the next start.
  const index = new LevelStore(undefined, syncIndexName(opts.storageName));
  await index.ready;
  const saved = await index.get(`v${source.nodeAddress()}`);
  await index.put("m", "open");
  await index.close();
  return { source, opts, asked, seen, saved, cursor: saved?.replace(/^\d+ /, "") };
}

/** Starts the new server again on its directories, links it to the source and resolves its first complete run. */
async function restart(fx: AttackFixture, { source, opts, seen }: Awaited<ReturnType<typeof stoppedCopy>>) {
  seen.phase = 1;
  const { db: again } = await fx.server(opts);
  const held = (await contents(again)).size;
  const runs: RangeSyncRun[] = [];
  again.sync.range!.on("done", (run) => runs.push(run));
  await linkServers(again, source, T);
  await waitUntil(() => runs.some((r) => r.complete), T, "a complete run");
  return { again, held, run: runs.find((r) => r.complete)! };
}

/** The restarted copy went on from `from` to the end, and the ranges after it had nothing left to fetch. */
async function resumedToTheEnd(stopped: Awaited<ReturnType<typeof stoppedCopy>>, restarted: Awaited<ReturnType<typeof restart>>, from: string | undefined) {
  const { source, asked, seen } = stopped;
  const { again, run } = restarted;
  assert.equal(asked[1]![0], from, "the restarted server asked from the saved cursor");
  assert.ok(!asked[1]!.includes(undefined), "no copy from the start of the store");
  assert.ok((run.copied ?? 0) > 0, `${run.copied} records copied`);
  assert.equal(seen.fetches, 0, "the ranges after the resumed copy fetched nothing: every record came by the copy");
  // Before: reported as a range run (mode "range", counted as one), as if the copy had not been resumed.
  assert.equal(run.mode, "copy", "a resumed copy that went to the end is reported as a copy (ranges followed it in the same run)");
  assert.equal(run.resumed, true);
  assert.ok(run.rangeBytesOut > 0, "ranges followed the resumed copy in the same run");
  assert.deepEqual(again.syncProgress.runs, { changes: 0, range: 0, copy: 1, incomplete: 0 }, "counted as a copy (tooldb_sync_runs_total{mode=\"copy\"})");
  assert.equal((await contents(again)).size, 2000);
  assert.equal(again.sync.range!.index.size, 2000);
  assert.equal(await savedCursor(again, source), undefined, "the finished copy's cursor is deleted");
}

describe("a new server restarted in the middle of a store copy", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("resumes the copy at the cursor saved before the stop, after its index was rebuilt, fetches no id, ends with every record and the cursor deleted", { timeout: T }, async () => {
    const stopped = await stoppedCopy(fx);
    assert.equal(stopped.cursor, stopped.asked[0]![4], "the cursor after the four pages taken in was saved");
    const restarted = await restart(fx, stopped);
    assert.ok(restarted.held > 0 && restarted.held < 2000, `${restarted.held} records held after the stop`);
    assert.ok((restarted.run.copied ?? 0) <= 2000 - restarted.held);
    await resumedToTheEnd(stopped, restarted, stopped.cursor);
  });

  it("a saved cursor behind the pages taken in (a crash between their intake and its save): the pages already here do not end the copy", { timeout: T }, async () => {
    const stopped = await stoppedCopy(fx);
    assert.ok(stopped.saved !== undefined, "the copy's cursor was saved");
    // The cursor of the first page, as a crash right after it was saved leaves it: pages 2-4 are here already.
    const behind = stopped.asked[0]![1]!;
    const index = new LevelStore(undefined, syncIndexName(stopped.opts.storageName));
    await index.ready;
    await index.put(`v${stopped.source.nodeAddress()}`, stopped.saved.replace(/ .*$/s, ` ${behind}`));
    await index.close();
    await resumedToTheEnd(stopped, await restart(fx, stopped), behind);
  });
});

describe("saved copy cursors", () => {
  it("are bounded (the least recently updated gives way), read back after a reopen, kept by an index rebuild and deleted when forgotten", { timeout: T }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "tooldb-copy-cursors-"));
    dirs.push(dir);
    const log = createLogger("test:copy-cursors");
    let now = 1_000;
    const open = async () => {
      const records = new LevelStore(undefined, join(dir, "records"));
      const index = new SyncIndex(new LevelStore(undefined, join(dir, "index")), records, log);
      await index.open();
      return { records, index, cursors: new CopyCursors(index.store, () => now, log) };
    };
    let { records, index, cursors } = await open();
    for (let i = 0; i <= MAX_COPY_CURSORS; i++) {
      now++;
      await cursors.save(`peer${i}`, `key/${i}`);
    }
    await cursors.save("peer1", "key/1b"); // updated: no longer the oldest
    await cursors.save("peer65", "key/65");
    assert.equal(await cursors.count(), MAX_COPY_CURSORS);
    assert.equal(await cursors.get("peer0"), undefined, "the least recently updated gave way");
    assert.equal(await cursors.get("peer2"), undefined);
    await cursors.forget("peer3");
    // An unclean close: the next open rebuilds the index from the records.
    await records.close();
    await index.store.close();
    ({ records, index, cursors } = await open());
    assert.equal(await cursors.count(), MAX_COPY_CURSORS - 1);
    assert.equal(await cursors.get("peer1"), "key/1b");
    assert.equal(await cursors.get("peer65"), "key/65");
    assert.equal(await cursors.get("peer3"), undefined, "a forgotten cursor is deleted from the store");
    await cursors.save("peer65", "key/66");
    assert.equal(await cursors.get("peer65"), "key/66", "the last cursor saved");
    await index.close();
    await records.close();
  });
});
