/**
 * What a hostile server that a victim dials can make it do with the ids of
 * its answers (found in review of the range-sync cost fix): an answer may
 * carry, as one of the 16 pieces of a range of ours (or as the answer to an
 * id list of ours), an id list of thousands of ids the victim does not
 * hold. Each is decoded, compared, queued and asked for with `syncFetch`;
 * cut after its first range every round, such answers kept a run going
 * round after round while its work (ranges and items read) charged the
 * responder a few dozen items a round (458 rounds, 3,664,000 ids asked
 * for, 100,522 items charged, and the run ended complete). An id asked
 * for and then neither served nor listed under `more` is now charged to
 * the responder's budget as a lookup (LOOKUP_WORK), as the responder
 * charges the ids it looks up for an asker and does not serve; a record
 * served counts only when it is one asked for and new here (an answer of
 * copies of records the victim holds, one an id, must not pass).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { type ToolDb } from "../src/index.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import { DEFAULT_SYNC_BUDGET, LOOKUP_WORK } from "../src/node/sync/sync-budget.js";
import { DIAL_MEMBERS_PER_SHARE } from "../src/node/sync/sync-gate.js";
import { type Bound, BoundCoder, ByteReader, ByteWriter, compareBounds } from "../src/node/sync/negentropy-codec.js";
import { readRanges } from "../src/node/sync/negentropy-resume.js";
import { clientIdOf } from "../src/records/peer-record.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { type HostileLink, type HostileServer, dialHostile } from "./helpers/hostile-server.js";
import { portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { type Frame } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
const TOPIC = "sync-reply-ids";
/** Ids the hostile answer lists a round (about 340 KB of base64). */
const FAKE_IDS = 8000;

/**
 * The hostile answer: the first range of ours answered, the rest cut off (a
 * remainder, so the victim sends it again): a fingerprinted range as an id
 * list of FAKE_IDS ids up to a bound just inside it and a wrong fingerprint
 * over the rest of it, an id list as an id list of FAKE_IDS ids.
 */
function answer(m: Uint8Array, ids: string): Uint8Array {
  const { ranges } = readRanges(new ByteReader(m.subarray(1)), Infinity);
  const first = ranges[0]!;
  const w = new ByteWriter();
  w.byte(0x61);
  const coder = new BoundCoder();
  if (first.lower.t !== 0 || first.lower.id !== "") {
    coder.write(w, first.lower);
    w.varint(0);
  }
  const list = (upper: Bound) => {
    coder.write(w, upper);
    w.varint(2);
    w.varint(FAKE_IDS);
    w.hex(ids);
  };
  const mid = { t: first.lower.t, id: `${first.lower.id}00` };
  if (first.mode === 1 && compareBounds(mid, first.upper) < 0) {
    list(mid);
    coder.write(w, first.upper);
    w.varint(1);
    w.hex("07".repeat(16));
  } else list(first.upper);
  if (ranges.length > 1) {
    coder.write(w, { t: Infinity, id: "" });
    w.varint(1);
    w.hex("07".repeat(16));
  }
  return w.view().slice();
}

describe("ids listed in a dialled hostile server's answers", () => {
  const hostiles: HostileServer[] = [];
  const fx = attackFixture(TOPIC, 30_000, () => {
    for (const h of hostiles.splice(0)) void h.close();
  });

  // Padded: each fetch answered with copies of records the victim holds (its own, as any peer can have them), one an id asked.
  for (const pad of [false, true]) {
  it(`are charged to its budget${pad ? ", copies of records it holds served instead" : ""}: a run ends once the ids it was made to ask for are worth the budget, not after 1,000 rounds`, { timeout: T }, async () => {
    const { db } = await fx.server();
    const stored = await signedRecords(300, "k/", Date.now() - 10_000_000);
    await seed(db, stored);
    const ids = randomBytes(32 * FAKE_IDS).toString("hex");
    let rounds = 0;
    let fetched = 0;
    const { hostile, runs } = await dialHostile(db, TOPIC, (link: HostileLink, f: Frame) => {
      if (f.type === "syncRange") {
        rounds++;
        link.send({ type: "syncRangeAck", id: f.id, to: [], m: Buffer.from(answer(Buffer.from(String(f.m), "base64"), ids)).toString("base64"), ms: 0 });
      } else if (f.type === "syncFetch") {
        fetched += (f.ids as string[]).length;
        const asked = (f.ids as string[]).length;
        link.send({ type: "syncRecords", id: f.id, to: [], records: pad ? Array.from({ length: asked }, (_, i) => stored[i % stored.length]) : [] });
      } else if (f.type === "syncPush") link.send({ type: "syncPushAck", id: f.id, to: [], records: [] });
    });
    hostiles.push(hostile);
    await waitUntil(() => runs.length >= 1, T, "a run");
    await hostile.close();
    const run = runs[0]!;
    // The budget: 24 × (300 + 10,000) items of work per window.
    const budget = 24 * (300 + 10_000);
    // Before: the run went on for 458 rounds and asked for 3,664,000 ids, charged 100,522 items; it even ended complete.
    // Now each id asked for and not served counts LOOKUP_WORK: the budget buys about 31,000 of them, and a
    // few rounds' ids (queued fetches, answers in flight) more are asked for before the run sees it used up.
    const slack = 16 * 1024 + 4 * FAKE_IDS;
    assert.ok(fetched <= budget / LOOKUP_WORK + slack, `${fetched} ids fetched in ${rounds} rounds, ${run.work} work charged: ${JSON.stringify(run)}`);
    assert.equal(run.complete, false);
    assert.match(run.reason ?? "", /sync budget \(scans\) for this peer used up|peer refused/);
    await intact(db, stored);
  });
  }
});

describe("our work on a dialled stranger's answers and its neighbours in the /24", () => {
  const hostiles: HostileServer[] = [];
  const fx = attackFixture(TOPIC, 30_000, () => {
    for (const h of hostiles.splice(0)) void h.close();
  });

  it("strangers of one /24 that use up the budget for their answers do not stop runs with an honest server of that /24, either way", { timeout: 2 * T }, async () => {
    // No refill during the test: a window of 10^10 ms.
    const { db } = await fx.server({ rangeSync: { budget: { windowMs: 1e10 } } });
    const stored = await signedRecords(300, "k/", Date.now() - 10_000_000);
    await seed(db, stored);
    const ids = randomBytes(32 * FAKE_IDS).toString("hex");
    // Four hostile servers on four addresses of 127.0.0.0/24, dialled one after the other, each run kept going on fake ids
    // until the budget for its answers is used up: together 4 budgets, what the /24 bucket held (before: shared with every
    // server of the /24, dialled or asking).
    for (const host of ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"]) {
      const { hostile, runs } = await dialHostile(
        db,
        TOPIC,
        (link, f) => {
          if (f.type === "syncRange") link.send({ type: "syncRangeAck", id: f.id, to: [], m: Buffer.from(answer(Buffer.from(String(f.m), "base64"), ids)).toString("base64"), ms: 0 });
          else if (f.type === "syncFetch") link.send({ type: "syncRecords", id: f.id, to: [], records: [] });
          else if (f.type === "syncPush") link.send({ type: "syncPushAck", id: f.id, to: [], records: [] });
        },
        host,
      );
      hostiles.push(hostile);
      await waitUntil(() => runs.length >= 1, T, `a run with ${host}`);
      await hostile.close();
      assert.equal(runs[0]!.complete, false);
    }
    // An honest server in the same /24, with records the victim lacks: they arrive, and the victim's run with it completes.
    const honest = fx.track(await startServer({ topic: TOPIC, host: "127.0.0.25", handshakeTimeout: 30_000 }));
    const theirs = await signedRecords(100, "h/", Date.now() - 5_000_000);
    await seed(honest, theirs);
    const runs: RangeSyncRun[] = [];
    db.sync.range!.on("done", (run) => run.peer === clientIdOf(honest.nodeAddress()) && runs.push(run));
    db.network.connectTo("127.0.0.25", portOf(honest));
    await waitUntil(() => runs.length >= 1, T, "a run with the honest server");
    assert.ok(runs[0]!.complete, `the run with the honest neighbour: ${JSON.stringify(runs[0])}`);
    await waitUntil(async () => (await contents(db)).size === stored.length + theirs.length, T, "the honest server's records");
    await intact(db, [...stored, ...theirs]);
  });

  it(`at most ${DIAL_MEMBERS_PER_SHARE} × rangeShare at once: a further fresh identity of the range gets no run, one of another range does`, { timeout: T }, async () => {
    const { db } = await fx.server();
    await seed(db, await signedRecords(50, "k/", Date.now() - 10_000_000));
    const members = DIAL_MEMBERS_PER_SHARE * DEFAULT_SYNC_BUDGET.rangeShare;
    /** A hostile server at `host` that refuses every syncRange (its run ends at once); the victim dials it; its first run. */
    const dial = async (host: string): Promise<{ run: RangeSyncRun; asked: number }> => {
      let asked = 0;
      const refuse = (link: HostileLink, f: Frame) => {
        if (f.type !== "syncRange") return;
        asked++;
        link.send({ type: "syncRangeAck", id: f.id, to: [], m: "", error: "busy" });
      };
      const { hostile, runs } = await dialHostile(db, TOPIC, refuse, host);
      hostiles.push(hostile);
      await waitUntil(() => runs.length >= 1, T, `a run with ${host}`);
      return { run: runs[0]!, asked };
    };
    for (let i = 0; i < members; i++) {
      const { run, asked } = await dial(`127.0.0.${40 + i}`);
      assert.ok(asked >= 1 && /peer refused: busy/.test(run.reason ?? ""), JSON.stringify(run));
    }
    // Fresh identities: one more of the range is asked nothing (it would be charged to a budget of its own).
    const over = await dial("127.0.0.60");
    assert.equal(over.asked, 0);
    assert.match(over.run.reason ?? "", /sync budget \(scans\) for this peer used up/);
    const elsewhere = await dial("127.0.1.60");
    assert.ok(elsewhere.asked >= 1, JSON.stringify(elsewhere.run));
  });
});

async function intact(db: ToolDb, stored: { k: string; h: string }[]): Promise<void> {
  const held = await contents(db);
  for (const r of stored) assert.equal(held.get(r.k), r.h, `${r.k} intact`);
}
