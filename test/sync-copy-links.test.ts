/**
 * Store copies (`copy1`, src/node/sync/store-copy.ts) and links to the same
 * peer address: a reconnect while the old link's copy still takes its last
 * pages in. The copy cursor of a peer (copy-cursors.ts) is saved only once
 * every page up to it was stored; two copies of one peer at once each moved
 * the shared cursor, and the new link's copy went on from where the old one
 * had asked (pages in flight, then let go unstored with the dropped link)
 * and saved cursors past records not stored: a restart would have skipped
 * them. Real LevelDB stores, real loopback sockets; checked by what the
 * records store holds at each cursor save, never by timings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LevelStore } from "../src/index.js";
import type { PeerSession } from "../src/network/peer-session.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { compareCodePoints } from "../src/base/text-formats.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { linkServers, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";
import { scratchStores } from "./helpers/scratch-stores.js";

const T = 120_000;
const TOPIC = "sync-copy-links";
/** Small frames, so that a copy of 2,000 records takes many pages. */
const SMALL_FRAMES = { maxMessageBytes: 64 * 1024 };
const T0 = Date.now() - 10_000_000;
const storeName = scratchStores("tooldb-copy-links-");

describe("store copies of one peer over more than one link", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("a reconnect while the old link's copy still takes pages in: one copy at a time, the new one resumes where the stored records end, no cursor is saved past a record not stored, and the run reports a resumed copy", { timeout: T }, async () => {
    const { db: source } = await fx.server(SMALL_FRAMES);
    await seed(source, await signedRecords(2000, "base/", T0));
    const keys = [...(await contents(source)).keys()].sort(compareCodePoints);
    const { db: fresh } = await fx.server({ ...SMALL_FRAMES, storageAdapter: LevelStore, storageName: storeName() });

    // Every copy cursor saved for the source is checked against the records store as it is saved.
    const passed: string[] = [];
    let saves = 0;
    const index = fresh.sync.range!.index.store;
    const put = index.put.bind(index);
    index.put = async (key: string, value: string) => {
      if (key === `v${source.nodeAddress()}`) {
        saves++;
        const cursor = value.slice(value.indexOf(" ") + 1);
        for (const k of keys) {
          if (compareCodePoints(k, cursor) > 0) break;
          if ((await fresh.store.get(k)) === undefined) {
            passed.push(`cursor ${cursor} saved past ${k}, not stored`);
            break;
          }
        }
      }
      return put(key, value);
    };

    // The first link's copy pages from the third on are held in the intake (a slow verification) until released.
    let first: PeerSession | undefined;
    let heldPages = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const accept = fresh.acceptFrame.bind(fresh);
    fresh.acceptFrame = async (records, from, stored, spread) => {
      if (spread === false && (first ??= from) === from && ++heldPages >= 3) await held;
      return accept(records, from, stored, spread);
    };
    const runs: RangeSyncRun[] = [];
    const order: string[] = [];
    fresh.sync.range!.on("done", (run) => {
      runs.push(run);
      order.push(`run ${run.complete ? "complete" : "incomplete"}`);
    });
    let secondLink: object | undefined;
    const handle = source.sync.range!.handle.bind(source.sync.range!);
    source.sync.range!.handle = (message, from) => {
      if (message.type === "syncCopy" && from === secondLink && !order.includes("copy on the new link")) order.push("copy on the new link");
      return handle(message, from);
    };

    await linkServers(fresh, source, T);
    // Three pages in the intake at once: the copy waits for one of them.
    await waitUntil(() => heldPages >= 5, T, "three copy pages held in the intake");
    const savedBefore = saves;
    // The old link drops; the new server dials again, and a run begins on the new link while the old one's is still on.
    first!.connection.close(1000, "test: a reconnect");
    await waitUntil(() => fresh.network.peers.some((p) => p.address === source.nodeAddress() && p !== first), T, "the new link");
    secondLink = source.network.peers.find((p) => p.address === fresh.nodeAddress());
    await waitUntil(() => fresh.syncProgress.running + fresh.syncProgress.waiting >= 2, T, "a run on the new link while the old one's goes on");
    assert.deepEqual([fresh.syncProgress.running, fresh.syncProgress.waiting], [1, 1], "the new link's run waits, counted as waiting");
    release();
    await waitUntil(() => runs.some((r) => r.complete), T, "a complete run on the new link");
    console.log(`# ${savedBefore} cursors saved before the reconnect, ${saves} in all; ${order.join(", ")}`);

    assert.deepEqual(passed, [], "every cursor saved says what the records store holds");
    assert.ok(saves > savedBefore, "the new link's copy saved cursors");
    assert.deepEqual(order.slice(0, 2), ["run incomplete", "copy on the new link"], "the new link's copy began once the old link's run had ended");
    const run = runs.find((r) => r.complete)!;
    assert.equal(run.mode, "copy", "reported as a copy");
    assert.equal(run.resumed, true, "resumed at a cursor");
    assert.equal(fresh.syncProgress.runs.copy, 1);
    assert.equal((await contents(fresh)).size, 2000);
    assert.equal(await index.get(`v${source.nodeAddress()}`), undefined, "the finished copy's cursor is deleted");
  });
});
