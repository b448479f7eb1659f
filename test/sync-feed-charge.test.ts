/**
 * What the ids a peer's change feed lists cost the server that dialed it
 * (change-sync.ts): each listed id is looked up in our index, so a lying
 * server listing ids without end (up to `maxRounds` pages of 4,096, about
 * 4 million ids a run by default) made us do as many lookups, uncharged.
 * Each listed id now costs 1 of the dialer-side budget for our work on the
 * peer's answers, checked before each page: a liar's run stops once it is
 * spent, and an honest run that meets it goes on from its checkpoint at the
 * next run.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import type { SyncMessage } from "../src/records/messages.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { itemId } from "../src/node/sync/sync-index.js";
import { closeAll, waitUntil } from "./helpers/nodes.js";
import { LATEST, linkedPair, sessionTo } from "./helpers/refresh-pair.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;

/** Counts the index lookups of ids a node makes (SyncIndex.keyOf). */
function countLookups(db: ToolDb): () => number {
  const index = db.sync.range!.index;
  const keyOf = index.keyOf.bind(index);
  let n = 0;
  index.keyOf = (id: string) => {
    n++;
    return keyOf(id);
  };
  return () => n;
}

/** The next run of `db`, reported by its `done` event. */
const nextRun = (db: ToolDb): Promise<RangeSyncRun> => new Promise((resolve) => db.sync.range!.once("done", resolve));

describe("change feeds: listed ids are charged to the dialer's budget", { timeout: 3 * T }, () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("a server we dialed lists page after page of ids we hold: our lookups stop at the budget, the run says why, our data is intact", { timeout: T }, async () => {
    const { clock, dialer: victim, listener: liar } = await linkedPair(nodes, {}, { rangeSync: { maxRounds: 40, budget: { slack: 100 } } });
    const own = await signedRecords(200, "own/", clock.now() - 1_000_000);
    await seed(victim, own);
    const ids = own.map(itemId);
    // The liar answers each feed request with a full page of the victim's own ids (no fetch: lookups only), always "more".
    const range = liar.sync.range!;
    const honestly = range.handle.bind(range);
    let pages = 0;
    range.handle = (message: SyncMessage, from) => {
      if (message.type === "syncChanges") {
        const send = from.send.bind(from);
        from.send = (reply) => {
          if (reply.type !== "syncChangesAck" || reply.id !== message.id) return send(reply);
          from.send = send;
          pages++;
          const after = message.s ?? 0;
          const n = liar.frames.idsPerMessage;
          const listed = Array.from({ length: n }, (_, i) => ids[(after + i) % ids.length]!);
          return send({ ...reply, ids: listed, next: after + n, more: true, head: after + n + 1_000_000_000 });
        };
      }
      return honestly(message, from);
    };
    const session = sessionTo(victim, liar);
    const budget = victim.sync.range!.gate.answersRemaining(session);
    const lookups = countLookups(victim);
    const done = nextRun(victim);
    clock.advance(LATEST);
    const run = await done;
    const pageIds = liar.frames.idsPerMessage;
    console.log(`# liar: ${pages} pages of ${pageIds} ids, victim lookups ${lookups()} (budget ${Math.round(budget)}), run ${run.complete ? "complete" : `incomplete: ${run.reason}`}`);
    assert.equal(run.complete, false);
    assert.match(run.reason ?? "", /budget \(scans\) for this peer used up/);
    assert.ok(lookups() <= budget + pageIds, `${lookups()} lookups for a budget of ${Math.round(budget)}`);
    assert.ok(pages < 40, `${pages} pages pulled`);
    const held = await contents(victim);
    for (const r of own) assert.equal(held.get(r.k), r.h, "the victim's records intact");
    assert.equal(session.connection.closed, false);
  });

  it("an honest difference larger than the budget converges over the next runs, each going on from its checkpoint", { timeout: T }, async () => {
    // Small pages (64 KiB frames: ~450 ids) and a dialer budget of 0.4 an item: a run lists about two pages.
    const { clock, dialer, listener } = await linkedPair(
      nodes,
      {},
      { rangeSync: { budget: { scansPerItem: 0.4, slack: 100, windowMs: 60_000 } } },
      { maxMessageBytes: 64 * 1024 },
    );
    const t0 = clock.now() - 1_000_000;
    const both = await signedRecords(1500, "both/", t0);
    const lacking = await signedRecords(30, "lacking/", t0 + 10_000);
    await seed(listener, both);
    await seed(dialer, both);
    await seed(listener, lacking);
    const lookups = countLookups(dialer);
    const runs: RangeSyncRun[] = [];
    dialer.sync.range!.on("done", (run) => runs.push(run));
    const holdsAll = async () => (await Promise.all(lacking.map((r) => dialer.records.get(r.k)))).every((r) => r !== undefined);
    for (let i = 0; i < 20 && !(runs.at(-1)?.complete && (await holdsAll())); i++) {
      const before = runs.length;
      clock.advance(75_000); // past a refresh or a retry, and a window: the budget refilled
      await waitUntil(() => runs.length > before && dialer.syncProgress.running === 0, 10_000, `run ${i + 1}`);
    }
    console.log(`# honest: ${runs.map((r) => (r.complete ? `${r.mode}` : `incomplete(${r.reason})`)).join(" ")}; lookups ${lookups()}`);
    assert.ok(await holdsAll(), "every lacking record fetched");
    assert.equal(runs.at(-1)!.complete, true);
    assert.ok(runs.some((r) => !r.complete && /budget \(scans\)/.test(r.reason ?? "")), "a run met the budget");
    assert.ok(runs.filter((r) => r.complete).every((r) => r.mode === "changes"), "by the change feeds throughout");
    // Resumed, not restarted: each listed id looked up about once across the runs.
    assert.ok(lookups() < 2 * (both.length + lacking.length), `${lookups()} lookups`);
  });
});
