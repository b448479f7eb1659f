/**
 * NEW_RECORD_CREDIT is earned once per record new here (review of the
 * credit): every RunTracker expecting an id counted it when the index added
 * it, so the same frame pushed on several links at once was credited on
 * each, and the buckets the links share (IP, address range) got the credit
 * once per link for one record verified and stored. Real sockets: raw
 * proven servers from one address push one frame of fresh records at once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY } from "../src/node/sync/range-sync.js";
import { NEW_RECORD_CREDIT } from "../src/node/sync/sync-budget.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink } from "./helpers/raw-peer.js";
import { contents, signedRecords, testAuthor } from "./helpers/signed-records.js";
import { signRecord } from "../src/node/record-signer.js";

const T = 60_000;
const TOPIC = "sync-credit-once";
const LINKS = 4;
const RECORDS = 100;

describe("the credit of a record new here", () => {
  const fx = attackFixture(TOPIC, 30_000);

  it("the same frame pushed on several links at once earns the shared buckets its records' credit once", { timeout: T }, async () => {
    // A window of 10^10 ms: the buckets refill by 0.03 items a second (about 250,000 a window).
    const { db } = await fx.server({ rangeSync: { budget: { windowMs: 1e10 } } });
    const port = portOf(db);
    const from = "127.0.0.91";
    const links = await Promise.all(
      Array.from({ length: LINKS }, async () => {
        const link = await RawLink.open(port, { topic: TOPIC, from });
        await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
        return link;
      }),
    );
    const budget = db.sync.range!.gate.budget;
    const ip = [`ip:${from}`];
    const spent = 10 * NEW_RECORD_CREDIT * RECORDS * LINKS; // far below the capacity, far above any credit
    budget.charge(ip, "scans", spent);
    const before = budget.remaining(ip, "scans");
    const records = await signedRecords(RECORDS, "credit/", Date.now() - 1_000_000);
    // One frame, under a message id of each link's own (a repeated id is dropped as a message seen).
    const acks = links.map((link, i) => link.next((f) => f.type === "syncPushAck" && f.id === `push-${i}`, T));
    links.forEach((link, i) => link.ws.send(JSON.stringify({ type: "syncPush", id: `push-${i}`, to: [], records })));
    for (const ack of await Promise.all(acks)) assert.equal(ack.error, undefined);
    await waitUntil(async () => (await contents(db)).size === RECORDS, T, "every pushed record stored");
    const earned = budget.remaining(ip, "scans") - before;
    assert.ok(earned >= NEW_RECORD_CREDIT * RECORDS, `earned ${earned}`);
    assert.ok(earned < NEW_RECORD_CREDIT * RECORDS + 10, `${RECORDS} records new here earned the address ${earned} items (${earned / (NEW_RECORD_CREDIT * RECORDS)} × their credit)`);
  });

  it("a writer re-signing its own key earns the credit once a window, in one frame or one a frame; the last version is stored", { timeout: T }, async () => {
    const { db } = await fx.server({ rangeSync: { budget: { windowMs: 1e10 } } });
    const from = "127.0.0.92";
    const link = await RawLink.open(portOf(db), { topic: TOPIC, from });
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
    const budget = db.sync.range!.gate.budget;
    const ip = [`ip:${from}`];
    budget.charge(ip, "scans", 10 * NEW_RECORD_CREDIT * RECORDS);
    const before = budget.remaining(ip, "scans");
    const user = await testAuthor();
    const t0 = Date.now() - 1_000_000;
    const versions = await Promise.all(Array.from({ length: RECORDS }, (_, i) => signRecord(user, "own/key", { v: i }, t0 + i, 0, false)));
    // Oldest first in one frame (each new here, each replacing the last), then the newer half again one a frame.
    const push = async (id: string, records: unknown[]) => {
      const ack = link.next((f) => f.type === "syncPushAck" && f.id === id, T);
      link.ws.send(JSON.stringify({ type: "syncPush", id, to: [], records }));
      assert.equal((await ack).error, undefined);
    };
    await push("all", versions.slice(0, RECORDS / 2));
    for (let i = RECORDS / 2; i < RECORDS; i++) await push(`one-${i}`, [versions[i]]);
    await waitUntil(async () => (await contents(db)).get("own/key") === versions.at(-1)!.h, T, "the last version stored");
    const earned = budget.remaining(ip, "scans") - before;
    // Before: every version earned it, 100 × NEW_RECORD_CREDIT.
    assert.ok(earned >= NEW_RECORD_CREDIT && earned < 2 * NEW_RECORD_CREDIT, `${RECORDS} versions of one key earned ${earned} items`);
  });
});
