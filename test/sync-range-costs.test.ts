/**
 * What a stranger that proves a fresh key as a server can make a server
 * spend on range reconciliation (found by an outside check): `syncRange`
 * messages of about 39,000 empty ranges, each with the right empty
 * fingerprint, cost the responder ~180 ms each but read no item, so only
 * the round was charged (an honest client's gets took 3.4 s at the median
 * from one attacking link, 11 s from four); a hostile server that a victim
 * dials kept it comparing 39,000 wrong-fingerprint empty ranges a round,
 * for up to 1,000 rounds a run; and `syncFetch` of unknown ids was never
 * charged. Each case attacks as the check's scripts did (raw peers, a raw
 * hostile server), then checks that the attacker was refused or dropped,
 * that an honest client's gets were answered within a generous bound
 * meanwhile (no tight timing), and that the data is intact.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { ErrorCode, type RefusalEvent, type ToolDb, type ToolDbRecord } from "../src/index.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../src/node/sync/range-sync.js";
import { MAX_RANGES_PER_MESSAGE } from "../src/node/sync/negentropy-bounds.js";
import { BoundCoder, ByteReader, ByteWriter } from "../src/node/sync/negentropy-codec.js";
import { readRanges } from "../src/node/sync/negentropy-resume.js";
import { attackFixture } from "./helpers/attack-fixture.js";
import { type HostileLink, type HostileServer, dialHostile } from "./helpers/hostile-server.js";
import { portOf, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink } from "./helpers/raw-peer.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 90_000;
const TOPIC = "sync-range-costs";
const past = () => Date.now() - 10_000_000;
/** The fingerprint of no item, as a peer computes it: sha256(32 zero bytes, varint 0), its first 16 bytes. */
const EMPTY_FINGERPRINT = createHash("sha256").update(Buffer.alloc(33)).digest("hex").slice(0, 32);

/**
 * A negentropy message of `count` ranges over empty time (a skip up to
 * `t0`, then ranges 1 ms wide where no record lies), each with
 * `fingerprint`: the right empty one makes a responder compare and skip
 * it, a wrong one makes it answer an id list.
 */
function emptyRanges(count: number, t0: number, fingerprint = EMPTY_FINGERPRINT): string {
  const w = new ByteWriter();
  w.byte(0x61);
  const coder = new BoundCoder();
  coder.write(w, { t: t0, id: "" });
  w.varint(0);
  for (let i = 1; i < count; i++) {
    coder.write(w, { t: t0 + i, id: "" });
    w.varint(1);
    w.hex(fingerprint);
  }
  return Buffer.from(w.view()).toString("base64");
}

/** Honest gets from a fresh link each (as the check's probe: 127.0.0.1, a proven handshake, one get) until `stop`, 8 at least; their latencies. */
async function probe(port: number, key: string, want: string, stop: () => boolean): Promise<number[]> {
  const times: number[] = [];
  while (!stop() || times.length < 8) {
    const started = Date.now();
    const link = await RawLink.open(port, { topic: TOPIC, from: "127.0.0.1" });
    try {
      await link.provenHandshake();
      const record = await link.get(key, 20_000);
      assert.equal(record.h, want, "the honest get read the stored record");
    } finally {
      link.terminate();
    }
    times.push(Date.now() - started);
    await new Promise((r) => setTimeout(r, 100));
  }
  return times.sort((a, b) => a - b);
}

const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;

describe("what reconciliation messages from a self-declared server cost", () => {
  /** Hostile servers of the test, closed after it whatever happened (an open one keeps the process alive). */
  const hostiles: HostileServer[] = [];
  const fx = attackFixture(TOPIC, 30_000, () => {
    for (const h of hostiles.splice(0)) void h.close();
  });

  async function rawServer(port: number, from: string): Promise<RawLink> {
    const link = await RawLink.open(port, { topic: TOPIC, from });
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
    return link;
  }

  /** Keeps 8 requests in flight on `link` until it closes or `stop`; counts answers and refusals. */
  async function flood(link: RawLink, request: (i: number) => Frame & { type: string }, stop: () => boolean, tally: { answered: number; refused: number; malformed: number }): Promise<void> {
    let i = 0;
    let inFlight = 0;
    while (!stop() && !link.isClosed) {
      if (inFlight >= 8) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const id = `flood-${++i}-${randomBytes(4).toString("hex")}`;
      inFlight++;
      link
        .next((f) => f.id === id, 10_000)
        .then(
          (reply) => {
            if (reply.error === "malformed request") tally.malformed++;
            else if (reply.error) tally.refused++;
            else tally.answered++;
          },
          () => undefined,
        )
        .finally(() => inFlight--);
      link.send({ to: [], id, ...request(i) });
    }
  }

  async function victim(records: number): Promise<{ db: ToolDb; refused: RefusalEvent[]; stored: ToolDbRecord[] }> {
    const { db, refused } = await fx.server();
    const stored = await signedRecords(records, "k/", past());
    await seed(db, stored);
    return { db, refused, stored };
  }

  async function assertIntact(db: ToolDb, stored: ToolDbRecord[]): Promise<void> {
    const held = await contents(db);
    for (const r of stored) assert.equal(held.get(r.k), r.h, `${r.k} intact`);
  }

  it("syncRange messages of empty ranges: over the cap answered up to it (the rest unread); at the cap charged by their ranges until refused, then dropped; honest gets answered meanwhile", { timeout: T }, async () => {
    const { db, refused, stored } = await victim(50);
    const port = portOf(db);
    // One message over the cap (older dialers sent up to 50,000 ranges): answered up to the cap, the rest sent back as a
    // remainder without being read; no strike.
    const single = await rawServer(port, "127.0.0.77");
    const over = single.next((f) => f.id === "over", T);
    single.send({ type: "syncRange", id: "over", to: [], m: emptyRanges(MAX_RANGES_PER_MESSAGE + 1000, 1_000_000_000) });
    const answer = await over;
    assert.equal(answer.error, undefined);
    assert.ok(typeof answer.m === "string" && answer.m.length > 0 && answer.m.length < 200, "a skip and the remainder");
    assert.ok(!refused.some((e) => e.code === ErrorCode.BAD_MESSAGE), "no strike");
    single.terminate();

    // Then the attack of the check, at the cap: 4 links from one address, 8 messages in flight on each, no two alike,
    // until the server drops them (or 30 s).
    const tally = { answered: 0, refused: 0, malformed: 0 };
    const links = await Promise.all(Array.from({ length: 4 }, () => rawServer(port, "127.0.0.78")));
    const deadline = Date.now() + 30_000;
    const done = () => Date.now() > deadline || links.every((l) => l.isClosed);
    const honest = probe(port, stored[7]!.k, stored[7]!.h, done);
    let t0 = 2_000_000_000;
    await Promise.all(links.map((link) => flood(link, () => ({ type: "syncRange", m: emptyRanges(MAX_RANGES_PER_MESSAGE, (t0 += MAX_RANGES_PER_MESSAGE + 10)) }), done, tally)));
    const times = await honest;
    // The budget (24 × (50 + 10,000) items of work per address and window) buys at most 2 messages of 16,384 ranges.
    assert.ok(tally.answered <= 4, `${tally.answered} answered`);
    assert.ok(tally.refused >= 1, "refused once the budget was used up");
    assert.ok(refused.some((e) => e.code === ErrorCode.SYNC_REFUSED && /sync budget \(scans\) used up/.test(e.reason)));
    // A link that kept asking after its refusals was struck until dropped.
    assert.ok(links.every((l) => l.isClosed), "the attacking links were dropped");
    assert.ok(refused.some((e) => /kept asking after its requests were refused/.test(e.reason)));
    assert.ok(median(times) < 2000, `honest gets: median ${median(times)} ms of ${times.join(", ")}`);
    await assertIntact(db, stored);
  });

  it("syncFetch of 4,096 unknown ids is charged by its lookups until refused; the link that keeps asking is dropped; honest gets answered meanwhile", { timeout: T }, async () => {
    const { db, refused, stored } = await victim(50);
    const port = portOf(db);
    const tally = { answered: 0, refused: 0, malformed: 0 };
    const links = await Promise.all(Array.from({ length: 4 }, () => rawServer(port, "127.0.0.79")));
    const deadline = Date.now() + 30_000;
    const done = () => Date.now() > deadline || links.every((l) => l.isClosed);
    const honest = probe(port, stored[3]!.k, stored[3]!.h, done);
    const batches = Array.from({ length: 16 }, () => Array.from({ length: 4096 }, () => randomBytes(32).toString("hex")));
    await Promise.all(links.map((link) => flood(link, (i) => ({ type: "syncFetch", ids: batches[i % batches.length] }), done, tally)));
    const times = await honest;
    // 241,200 items of work per address and window, 8 a lookup: about 7 fetches of 4,096 unknown ids (before: none refused in 2,920).
    assert.ok(tally.answered <= 12, `${tally.answered} answered`);
    assert.ok(tally.refused >= 1);
    assert.ok(refused.some((e) => e.code === ErrorCode.SYNC_REFUSED && /sync budget \(scans\) used up/.test(e.reason)));
    assert.ok(links.every((l) => l.isClosed), "the attacking links were dropped");
    assert.ok(median(times) < 2000, `honest gets: median ${median(times)} ms of ${times.join(", ")}`);
    await assertIntact(db, stored);
  });

  it("a syncFetch of 4,096 unknown ids looks up no more ids than the scan budget left pays for", { timeout: T }, async () => {
    // No refill during the test: a window of 10^10 ms.
    const { db, stored } = await (async () => {
      const { db } = await fx.server({ rangeSync: { budget: { windowMs: 1e10 } } });
      const stored = await signedRecords(50, "k/", past());
      await seed(db, stored);
      return { db, stored };
    })();
    const from = "127.0.0.80";
    const link = await rawServer(portOf(db), from);
    const budget = db.sync.range!.gate.budget;
    const ip = [`ip:${from}`];
    budget.charge(ip, "scans", budget.remaining(ip, "scans") - 600); // 600 items of work left: 75 lookups
    const ids = Array.from({ length: 4096 }, () => randomBytes(32).toString("hex"));
    const reply = link.next((f) => f.id === "fetch", T);
    link.send({ type: "syncFetch", id: "fetch", to: [], ids });
    const answer = await reply;
    assert.equal(answer.error, undefined);
    assert.deepEqual(answer.records, []);
    const more = (answer.more as string[] | undefined) ?? [];
    assert.ok(more.length >= 4096 - 75, `${more.length} ids left to ask again`);
    // Before: lookups were bounded by the serves budget (20,100 here), so all 4,096 were looked up: 32,768 items charged.
    budget.credit(ip, "scans", 1000);
    assert.ok(budget.remaining(ip, "scans") >= 1000 - 8, `overdrawn: ${budget.remaining(ip, "scans") - 1000} left`);
    await assertIntact(db, stored);
  });

  describe("a hostile server that a victim dials", () => {
    /** A raw "server" listing rbsr1 whose answers to the victim's syncRange are `answer(message)`; the victim dials it. */
    async function dialed(db: ToolDb, answer: (m: Uint8Array) => Uint8Array): Promise<{ hostile: HostileServer; rounds: () => number; runs: RangeSyncRun[] }> {
      let rounds = 0;
      const { hostile, runs } = await dialHostile(db, TOPIC, (link: HostileLink, f: Frame) => {
        if (f.type === "syncRange") {
          rounds++;
          link.send({ type: "syncRangeAck", id: f.id, to: [], m: Buffer.from(answer(Buffer.from(String(f.m), "base64"))).toString("base64"), ms: 0 });
        } else if (f.type === "syncFetch") link.send({ type: "syncRecords", id: f.id, to: [], records: [] });
        else if (f.type === "syncPush") link.send({ type: "syncPushAck", id: f.id, to: [], records: [] });
      });
      hostiles.push(hostile);
      // Its runs only (one with a server closed before may still end meanwhile).
      return { hostile, rounds: () => rounds, runs };
    }

    /** A reply of `count` ranges over empty time with wrong fingerprints (the check's hostile answer). */
    const wrongEmpty = (count: number) => () => Buffer.from(emptyRanges(count, 3_000_000_000_000, "07".repeat(16)), "base64");

    it("answers of 39,000 wrong-fingerprint empty ranges end each run at its first reply, with a strike; honest gets answered meanwhile", { timeout: T }, async () => {
      const { db, refused, stored } = await victim(50);
      const { hostile, rounds, runs } = await dialed(db, wrongEmpty(39_000));
      let done = false;
      const honest = probe(portOf(db), stored[1]!.k, stored[1]!.h, () => done);
      await waitUntil(() => runs.length >= 2, T, "two runs").finally(() => (done = true));
      const times = await honest;
      await hostile.close();
      assert.ok(runs.every((r) => !r.complete && r.rounds <= 1 && /ranges in one message/.test(r.reason ?? "")), JSON.stringify(runs));
      assert.ok(rounds() <= runs.length + 1, `${rounds()} rounds for ${runs.length} runs (before: up to 1,000 a run)`);
      assert.ok(refused.some((e) => e.code === ErrorCode.BAD_MESSAGE && /bad reconciliation reply/.test(e.reason)));
      assert.ok(median(times) < 2000, `honest gets: median ${median(times)} ms of ${times.join(", ")}`);
      await assertIntact(db, stored);
    });

    it("answers shaped as a responder's that do not shrink the ranges, or are cut before answering any, end the run with a strike", { timeout: T }, async () => {
      const { db, refused, stored } = await victim(300);
      // Every fingerprinted range back as it was, with a wrong fingerprint; every id list as an empty one.
      const unsplit = (m: Uint8Array) => {
        const { ranges } = readRanges(new ByteReader(m.subarray(1)), Infinity);
        const w = new ByteWriter();
        w.byte(0x61);
        const coder = new BoundCoder();
        let at = { t: 0, id: "" };
        for (const r of ranges) {
          if (r.lower.t !== at.t || r.lower.id !== at.id) {
            coder.write(w, r.lower);
            w.varint(0);
          }
          coder.write(w, r.upper);
          if (r.mode === 1) {
            w.varint(1);
            w.hex("07".repeat(16));
          } else {
            w.varint(2);
            w.varint(0);
          }
          at = r.upper;
        }
        return w.view().slice();
      };
      const first = await dialed(db, unsplit);
      await waitUntil(() => first.runs.length >= 1, T, "a run");
      assert.equal(first.runs[0]!.complete, false);
      assert.match(first.runs[0]!.reason ?? "", /ranges answered unsplit/);
      assert.ok(first.runs[0]!.rounds <= 3, `${first.runs[0]!.rounds} rounds`);
      await first.hostile.close();
      // Cut before answering anything: a remainder over the whole set, every round.
      const cut = () => Buffer.from("6100" + "0001" + "07".repeat(16), "hex");
      const second = await dialed(db, cut);
      await waitUntil(() => second.runs.length >= 2, T, "a run");
      assert.match(second.runs.at(-1)!.reason ?? "", /cut short before answering any range/);
      assert.ok(second.runs.at(-1)!.rounds <= 1);
      await second.hostile.close();
      assert.ok(refused.filter((e) => e.code === ErrorCode.BAD_MESSAGE && /bad reconciliation reply/.test(e.reason)).length >= 2);
      await assertIntact(db, stored);
    });
  });
});
