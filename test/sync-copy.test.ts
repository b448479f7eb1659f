/**
 * A new server's first catch-up as a copy of its peer's store (`copy1`,
 * src/node/sync/store-copy.ts), over real loopback sockets: complete and
 * within the frame limit, the change feeds carrying later writes, a copy
 * resumed at its cursor after a dropped link, a bad record in the middle of
 * a page refused without losing the others; and attacked: raw peers that
 * are no servers or ask for copies past their budget, and responders that
 * lie about the cursor or never finish. Checked by records, runs and
 * refusals, never by timings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, type ToolDb } from "../src/index.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../src/node/sync/range-sync.js";
import { COPY_CAPABILITY } from "../src/node/sync/store-copy.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { copyRun, onCopy } from "./helpers/copy-run.js";
import { linkServers, portOf, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "sync-copy";
/** Small frames, so that a copy of a few thousand records takes many pages. */
const SMALL_FRAMES = { maxMessageBytes: 64 * 1024 };
const past = () => Date.now() - 10_000_000;

async function unlink(a: ToolDb, b: ToolDb): Promise<void> {
  a.network.disconnectFrom("127.0.0.1", portOf(b));
  await waitUntil(() => a.network.peers.length === 0 && b.network.peers.length === 0, T, "the link to drop");
}

describe("a new server copies its peer's store", () => {
  const fx = attackFixture(TOPIC, 30_000);
  const server = async (opts = {}): Promise<ToolDb> => (await fx.server({ ...SMALL_FRAMES, ...opts })).db;

  it("servers list copy1; an empty server's first run copies every record in pages within the frame limit, sends no ids, and the feeds carry what comes later", { timeout: T }, async () => {
    const [source, fresh] = [await server(), await server()];
    const records = await signedRecords(3000, "base/", past());
    await seed(source, records);
    const refused: string[] = [];
    for (const db of [source, fresh]) db.on("refused", (e) => refused.push(`${e.code}: ${e.reason}`));
    const run = await copyRun(fresh, source);
    assert.ok(fresh.network.peers[0]!.caps.has(COPY_CAPABILITY));
    assert.equal(run.complete, true, run.reason);
    assert.equal(run.mode, "copy");
    assert.equal(run.fetched, 3000);
    assert.ok(run.rounds > 10, `${run.rounds} pages of 64 KiB frames`);
    assert.equal(run.rangeBytesOut, 0, "no range reconciliation, no id lists");
    assert.equal((await contents(fresh)).size, 3000);
    assert.deepEqual(refused, [], "no frame over the limit, nothing refused");
    assert.equal(fresh.syncProgress.runs.copy, 1);

    // Both checkpoints settled: the next link goes by the feeds, with only what changed since.
    await unlink(fresh, source);
    await seed(source, await signedRecords(25, "later/", past()));
    const again = await copyRun(fresh, source);
    assert.equal(again.mode, "changes");
    assert.equal(again.complete, true, again.reason);
    assert.deepEqual([again.fetched, again.pushed], [25, 0], "nothing offered back of what the copy brought");
    assert.equal((await contents(fresh)).size, 3025);
  });

  it("a copy cut by a dropped link resumes at its cursor on the next link and ends complete, with ranges after it", { timeout: T }, async () => {
    const [source, fresh] = [await server(), await server()];
    await seed(source, await signedRecords(2000, "base/", past()));
    const asked: (string | undefined)[] = [];
    onCopy(source, (message, from, honest) => {
      asked.push(message.after);
      // The fourth page is never answered: the link drops instead.
      if (asked.length === 4) return from.connection.close(1000, "test drops the link");
      honest();
    });
    const runs: RangeSyncRun[] = [];
    fresh.sync.range!.on("done", (run) => runs.push(run));
    // The dialer links again by itself after the drop (its dial target stays).
    await linkServers(fresh, source, T);
    await waitUntil(() => runs.some((r) => r.complete), T, "a complete run");
    const [cut, resumed] = runs;
    assert.equal(cut!.complete, false);
    assert.equal(runs.length, 2, "the next run completed");
    assert.equal(resumed!.complete, true, resumed!.reason);
    // Reported as a copy, resumed (it was reported as "range"); ranges follow it (the store was not empty when it began).
    assert.equal(resumed!.mode, "copy", "the rest of the copy, then ranges");
    assert.equal(resumed!.resumed, true);
    // From the last cursor saved: the third page's intake may have been cut by the drop (let go unstored), so not always the fourth's.
    assert.ok(asked[4] !== undefined && asked.slice(1, 4).includes(asked[4]), "the next run asked from where the copy's stored pages end, not from the start");
    assert.ok(resumed!.fetched < 2000, `${resumed!.fetched} records taken in by the second run`);
    assert.equal((await contents(fresh)).size, 2000);
  });

  it("a record with a bad signature in the middle of a page is refused; the records around it are stored", { timeout: T }, async () => {
    const [source, fresh] = [await server(), await server()];
    const records = await signedRecords(300, "base/", past());
    await seed(source, records);
    // Stored under the source's hand (a bad disk, or a modified server): a value its signature does not cover.
    const bad = records[150]!;
    await source.store.put(bad.k, JSON.stringify({ ...bad, v: "tampered" }));
    const refused: ErrorCode[] = [];
    fresh.on("refused", (e) => refused.push(e.code));
    const run = await copyRun(fresh, source);
    assert.equal(run.complete, true, run.reason);
    const held = await contents(fresh);
    assert.equal(held.size, 299);
    assert.equal(held.has(bad.k), false);
    for (const r of records) if (r !== bad) assert.equal(held.get(r.k), r.h);
    assert.ok(refused.length >= 1, "the bad record was reported");
  });

  it("a responder whose cursor goes back is struck and the copy ends: the asker does not loop", { timeout: T }, async () => {
    const [source, fresh] = [await server(), await server()];
    await seed(source, await signedRecords(1000, "base/", past()));
    let pages = 0;
    onCopy(source, (message, from, honest) => {
      pages++;
      if (pages === 1) return honest();
      from.send({ type: "syncRecords", id: message.id, records: [], next: " " });
    });
    const refused: string[] = [];
    fresh.on("refused", (e) => refused.push(e.reason));
    const run = await copyRun(fresh, source);
    assert.equal(run.complete, false);
    assert.match(run.reason ?? "", /cursor did not move forward/);
    assert.equal(pages, 2);
    assert.ok(refused.some((r) => /cursor went back/.test(r)), refused.join("; "));
    assert.ok((await contents(fresh)).size > 0, "the records of the honest page are kept");
  });

  it("a responder that pages for ever with records the asker holds is stopped by the asker's budgets", { timeout: T }, async () => {
    const [source, fresh] = [await server(), await server({ rangeSync: { maxRounds: 40 } })];
    const records = await signedRecords(200, "base/", past());
    await seed(source, records);
    let pages = 0;
    onCopy(source, (message, from) => {
      pages++;
      // The same records again and again (a page within the frame limit), with a cursor that always moves on.
      from.send({ type: "syncRecords", id: message.id, records: records.slice(0, 50), next: `z${String(pages).padStart(8, "0")}` });
    });
    const run = await copyRun(fresh, source);
    console.log(`# endless pages: ${pages} asked, run ${run.mode} complete=${run.complete} rounds=${run.rounds} fetched=${run.fetched}`);
    assert.ok(pages <= 40, `${pages} pages asked for`);
    assert.ok(run.rounds <= 40 + 40, `${run.rounds} rounds`);
    assert.equal((await contents(fresh)).size, 200, "the ranges after the copy fetched the rest");
  });
});

describe("copies asked for by strangers", () => {
  const fx = attackFixture(`${TOPIC}-raw`, 30_000);

  async function ask(link: RawLink, message: Frame & { type: string; id: string }): Promise<Frame> {
    const reply = link.next((f) => f.id === message.id, T);
    link.send({ to: [], ...message });
    return reply;
  }

  it("are refused to a link that is no proven server, and bounded by the serves budget for one that is", { timeout: T }, async () => {
    const { db: source, refused } = await fx.server({ ...SMALL_FRAMES, rangeSync: { budget: { slack: 0, servesPerItem: 1 } } });
    const records = await signedRecords(400, "k/", past());
    await seed(source, records);
    const client = await RawLink.connect(portOf(source), { topic: `${TOPIC}-raw` });
    const refusedCopy = await ask(client, { type: "syncCopy", id: "c0" });
    assert.match(String(refusedCopy.error), /only to servers/);
    assert.deepEqual(refusedCopy.records, []);

    // A proven server copies the whole store once; a second copy in the same window gets nothing.
    let copied = 0;
    for (const attempt of [1, 2]) {
      const peer = await RawLink.open(portOf(source), { topic: `${TOPIC}-raw`, from: "127.0.0.40" });
      await peer.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY, COPY_CAPABILITY] });
      let after: string | undefined;
      for (let page = 0; page < 100; page++) {
        const reply = await ask(peer, { type: "syncCopy", id: `c${attempt}-${page}`, ...(after === undefined ? {} : { after }) });
        copied += (reply.records as unknown[]).length;
        if (reply.error !== undefined || reply.next === undefined) break;
        assert.ok(after === undefined || String(reply.next) > after, "the cursor moves forward");
        after = String(reply.next);
      }
      peer.terminate();
    }
    assert.equal(copied, 400, "one copy of the store in all, not two");
    assert.ok(refused.some((e) => e.code === ErrorCode.SYNC_REFUSED && /budget/.test(e.reason)), refused.map((e) => e.reason).join("; "));
    assert.equal((await contents(source)).size, 400, "the source's data is intact");
  });
});
