/**
 * The negentropy V1 implementation (src/node/sync/negentropy*.ts) against the
 * protocol's published vector (test/protoversion.pl in hoytech/negentropy),
 * against messages the reference JS implementation produced
 * (test/fixtures/negentropy-vectors.json: hoytech/negentropy js/Negentropy.js
 * at 6edb041, sets described below), and against set arithmetic on random
 * sets, with and without a frame limit. The index it runs over:
 * sync-index-stores.test.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { bytesToHex, hexToBytes } from "../src/crypto/encoding.js";
import { type Bound, BoundCoder, ByteReader, ByteWriter, INFINITY_BOUND, type Item, type ItemSource, MIN_BOUND, countRanges } from "../src/node/sync/negentropy-codec.js";
import { Reconciler } from "../src/node/sync/negentropy.js";
import { MAX_RANGES_PER_MESSAGE, RANGE_WORK, checkReply, maxReplyRanges } from "../src/node/sync/negentropy-bounds.js";
import type { SentRange } from "../src/node/sync/negentropy-resume.js";
import { ArraySource, randomItems } from "./helpers/array-source.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
/** The fingerprint of no item: sha256(32 zero bytes, varint 0), its first 16 bytes. */
const EMPTY_FINGERPRINT = createHash("sha256").update(Buffer.alloc(33)).digest("hex").slice(0, 32);

/** Runs a whole reconciliation; returns what the initiator learned and the largest message. */
async function reconcile(mine: Item[], theirs: Item[], frameLimit: number): Promise<{ have: Set<string>; need: Set<string>; rounds: number; largest: number; responderScanned: number }> {
  const initiator = new Reconciler(new ArraySource(mine), frameLimit, true);
  const responder = new Reconciler(new ArraySource(theirs), frameLimit, false);
  const have = new Set<string>();
  const need = new Set<string>();
  let msg: Uint8Array | null = await initiator.initiate();
  let rounds = 0;
  let largest = msg.length;
  while (msg) {
    assert.ok(++rounds < 100, "terminates");
    const reply = (await responder.reconcile(msg)).output!;
    largest = Math.max(largest, reply.length);
    const r = await initiator.reconcile(reply);
    r.have.forEach((id) => have.add(id));
    r.need.forEach((id) => need.add(id));
    msg = r.output;
    if (msg) largest = Math.max(largest, msg.length);
  }
  return { have, need, rounds, largest, responderScanned: responder.scanned };
}

/**
 * Two sets sharing `shared` items, each with extra ones of its own spread over the whole time
 * range, a reconciler pair over them with `frameLimit`, and what the initiator learned.
 */
function spreadPair(shared: number, onlyMine: number, onlyTheirs: number, frameLimit: number) {
  const common = randomItems(shared, 1_000_000);
  const mine = [...common, ...randomItems(onlyMine, 1_000_000)];
  const theirs = [...common, ...randomItems(onlyTheirs, 1_000_000)];
  const have = new Set<string>();
  const need = new Set<string>();
  return {
    mine,
    initiator: new Reconciler(new ArraySource(mine), frameLimit, true),
    responder: new Reconciler(new ArraySource(theirs), frameLimit, false),
    learn(r: { have: string[]; need: string[] }): void {
      r.have.forEach((id) => have.add(id));
      r.need.forEach((id) => need.add(id));
    },
    /** The initiator learned exactly the symmetric difference. */
    assertLearned(): void {
      assert.deepEqual([...have].sort(), mine.slice(shared).map((i) => i.id).sort());
      assert.deepEqual([...need].sort(), theirs.slice(shared).map((i) => i.id).sort());
    },
  };
}

describe("negentropy V1", () => {
  it("answers the published protocol vector (protoversion.pl): a full-range empty IdList gets our one id back", async () => {
    const responder = new Reconciler(new ArraySource([{ t: 12345, id: "ee".repeat(32) }]), 0, false);
    const { output } = await responder.reconcile(hexToBytes("6100000200"));
    assert.equal(bytesToHex(output!), `6100000201${"ee".repeat(32)}`);
    // A newer protocol version is answered with the version we speak.
    const newer = await responder.reconcile(hexToBytes("62aabbccddeeff"));
    assert.equal(bytesToHex(newer.output!), "61");
  });

  it("writes byte for byte the messages of the reference implementation, and learns the same differences", async () => {
    const vectors = JSON.parse(readFileSync(new URL("../../test/fixtures/negentropy-vectors.json", import.meta.url), "utf8")) as Record<string, string | string[] | null>;
    // The sets: item i has t = 1000 + i % 7 and id sha256("item-i"); A holds 0..99, B holds 50..149.
    const set = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => ({ t: 1000 + ((from + k) % 7), id: sha(`item-${from + k}`) }));
    const a = new Reconciler(new ArraySource(set(0, 100)), 0, true);
    const b = new Reconciler(new ArraySource(set(50, 150)), 0, false);
    const init = await a.initiate();
    assert.equal(bytesToHex(init), vectors.initiate);
    const response = (await b.reconcile(init)).output!;
    assert.equal(bytesToHex(response), vectors.response);
    const next = await a.reconcile(response);
    assert.equal(next.output ? bytesToHex(next.output) : null, vectors.next);
    assert.deepEqual(next.have.sort(), vectors.have);
    assert.deepEqual(next.need.sort(), vectors.need);
  });

  it("finds exactly the symmetric difference of random sets, within the frame limit, in few rounds", async () => {
    for (const [frameLimit, shared, onlyMine, onlyTheirs] of [
      [0, 5000, 30, 40],
      [4096, 3000, 600, 400],
      [4096, 0, 2000, 0],
      [0, 20, 0, 0],
    ] as const) {
      const common = randomItems(shared, 100);
      const mine = [...common, ...randomItems(onlyMine, 100)];
      const theirs = [...common, ...randomItems(onlyTheirs, 100)];
      const { have, need, rounds, largest } = await reconcile(mine, theirs, frameLimit);
      assert.deepEqual([...have].sort(), mine.slice(shared).map((i) => i.id).sort());
      assert.deepEqual([...need].sort(), theirs.slice(shared).map((i) => i.id).sort());
      if (frameLimit) assert.ok(largest <= frameLimit, `message of ${largest} bytes over ${frameLimit}`);
      else assert.ok(rounds <= 4, `${rounds} rounds`);
    }
  });

  it("a catch-up that fills frame after frame reads each item about once, not the rest of the set every round", async () => {
    const theirs = randomItems(6000, 1_000_000);
    const { need, rounds, responderScanned } = await reconcile([], theirs, 4096);
    assert.deepEqual([...need].sort(), theirs.map((i) => i.id).sort());
    assert.ok(rounds > 20, `${rounds} rounds: the frames were not full`);
    // Summing the rest of the set for every full frame read ~rounds × 3000 items (150,000 here).
    assert.ok(responderScanned < 3 * theirs.length, `responder read ${responderScanned} items for ${theirs.length}`);
  });

  it("differences spread over the whole set, in small frames: each round resumes where the full frame stopped instead of re-splitting the rest", async () => {
    const { mine, initiator, responder, learn, assertLearned } = spreadPair(6000, 600, 600, 4096);
    let msg: Uint8Array | null = await initiator.initiate();
    let rounds = 0;
    while (msg) {
      assert.ok(++rounds < 200, "terminates");
      assert.ok(msg.length <= 4096);
      const reply = (await responder.reconcile(msg)).output!;
      assert.ok(reply.length <= 4096);
      const r = await initiator.reconcile(reply);
      learn(r);
      msg = r.output;
    }
    assertLearned();
    // Re-splitting from the top after every full frame read ~860,000 items on the two sides here.
    const read = initiator.scanned + responder.scanned;
    assert.ok(read < 15 * mine.length, `${read} items read for ${mine.length}`);
  });

  it("pipelined: several messages in flight, replies taken out of order, learn exactly the same differences", async () => {
    const { initiator, responder, learn, assertLearned } = spreadPair(8000, 800, 700, 4096);
    const flying = [await initiator.start()];
    let messages = 1;
    let mostInFlight = 1;
    while (flying.length > 0) {
      // The newest message is answered first: the replies of a window need not come back in order.
      const out = flying.pop()!;
      assert.ok(out.message.length <= 4096);
      const reply = (await responder.reconcile(out.message)).output!;
      learn(await initiator.take(reply, out));
      while (flying.length < 3) {
        const next = await initiator.next();
        if (!next) break;
        flying.push(next);
        mostInFlight = Math.max(mostInFlight, flying.length);
        assert.ok(++messages < 400, "terminates");
      }
    }
    assert.equal(initiator.pendingRanges, 0);
    assert.ok(mostInFlight > 1, "messages overlapped");
    assertLearned();
  });

  it("a read budget per message: each message of the initiator reads about that many items, and the run learns the same differences", async () => {
    const limit = 1000;
    const run = async (readsPerMessage: number) => {
      const common = randomItems(20_000, 1_000_000);
      const mine = [...common, ...randomItems(2000, 1_000_000)];
      const theirs = [...common, ...randomItems(2000, 1_000_000)];
      const initiator = new Reconciler(new ArraySource(mine), 0, true, 8, readsPerMessage);
      const responder = new Reconciler(new ArraySource(theirs), 0, false, 8);
      const learned = { have: new Set<string>(), need: new Set<string>() };
      const flying = [await initiator.start()];
      let messages = 1;
      let mostRead = 0;
      while (flying.length > 0) {
        const out = flying.shift()!;
        const reply = (await responder.reconcile(out.message)).output!;
        const r = await initiator.take(reply, out);
        r.have.forEach((id) => learned.have.add(id));
        r.need.forEach((id) => learned.need.add(id));
        while (flying.length < 3) {
          const before = initiator.scanned;
          const next = await initiator.next();
          if (!next) break;
          mostRead = Math.max(mostRead, initiator.scanned - before);
          flying.push(next);
          assert.ok(++messages < 2000, "terminates");
        }
      }
      assert.deepEqual([...learned.have].sort(), mine.slice(common.length).map((i) => i.id).sort());
      assert.deepEqual([...learned.need].sort(), theirs.slice(common.length).map((i) => i.id).sort());
      return { messages, mostRead };
    };
    const unlimited = await run(0);
    const limited = await run(limit);
    // Without a budget one message carries a whole level of the tree (every item read).
    assert.ok(unlimited.mostRead > 10 * limit, `unlimited: ${unlimited.mostRead} items read for one message`);
    // With one, a message stops at the first range past the budget (a range here holds at most ~1,400 items).
    assert.ok(limited.mostRead < 2 * limit, `limited: ${limited.mostRead} items read for one message`);
    assert.ok(limited.messages > unlimited.messages, `${limited.messages} messages against ${unlimited.messages}`);
  });

  it("no message of ours passes the range cap, and no reply passes what the message it answers allows; the run still learns the difference", async () => {
    const maxRanges = 64;
    const common = randomItems(6000, 1_000_000);
    const mine = [...common, ...randomItems(600, 1_000_000)];
    const theirs = [...common, ...randomItems(600, 1_000_000)];
    // No frame limit, no read budget: only the cap ends a message.
    const initiator = new Reconciler(new ArraySource(mine), 0, true, 8, 0, maxRanges);
    const responder = new Reconciler(new ArraySource(theirs), 0, false, 8, 0, maxRanges);
    const have = new Set<string>();
    const need = new Set<string>();
    const count = (m: Uint8Array) => countRanges(m, Infinity);
    const flying = [await initiator.start()];
    let messages = 1;
    let largest = 0;
    while (flying.length > 0) {
      const out = flying.shift()!;
      largest = Math.max(largest, count(out.message));
      assert.ok(count(out.message) <= maxRanges, `a message of ${count(out.message)} ranges`);
      const reply = (await responder.reconcile(out.message)).output!;
      assert.ok(count(reply) <= maxReplyRanges(out.sent.length), `a reply of ${count(reply)} ranges to ${out.sent.length}`);
      const r = await initiator.take(reply, out);
      r.have.forEach((id) => have.add(id));
      r.need.forEach((id) => need.add(id));
      while (flying.length < 3) {
        const next = await initiator.next();
        if (!next) break;
        flying.push(next);
        assert.ok(++messages < 2000, "terminates");
      }
    }
    assert.ok(largest > maxRanges / 2, `the cap was reached (largest ${largest})`);
    assert.deepEqual([...have].sort(), mine.slice(common.length).map((i) => i.id).sort());
    assert.deepEqual([...need].sort(), theirs.slice(common.length).map((i) => i.id).sort());
  });

  it("a message over the range cap is answered up to the cap and the rest sent back unread as a remainder; ranges count as work, empty ones too", async () => {
    let reads = 0;
    const source = new ArraySource(randomItems(100, 1_000_000));
    const counted: ItemSource = {
      scan: (lower, upper) => {
        reads++;
        return source.scan(lower, upper);
      },
    };
    const emptyRanges = (n: number) => {
      const w = new ByteWriter();
      w.byte(0x61);
      const coder = new BoundCoder();
      coder.write(w, { t: 2_000_000, id: "" }); // our items lie below: skipped
      w.varint(0);
      for (let i = 1; i < n; i++) {
        coder.write(w, { t: 2_000_000 + i, id: "" });
        w.varint(1);
        w.hex(EMPTY_FINGERPRINT);
      }
      return w.view().slice();
    };
    // Over the cap (older initiators sent up to 50,000): the first MAX_RANGES_PER_MESSAGE answered, the rest, never
    // read, comes back as one remainder range that the initiator sends again.
    const over = new Reconciler(counted, 0, false);
    const cut = await over.reconcile(emptyRanges(3 * MAX_RANGES_PER_MESSAGE));
    const answer = new ByteReader(cut.output!);
    assert.equal(answer.byte(), 0x61);
    const coder = new BoundCoder();
    const skipTo = coder.read(answer);
    assert.equal(answer.varint(), 0, "the matched ranges skipped");
    assert.deepEqual(skipTo, { t: 2_000_000 + MAX_RANGES_PER_MESSAGE - 1, id: "" });
    const rest = coder.read(answer);
    assert.deepEqual(rest, INFINITY_BOUND, "the remainder runs to the end");
    assert.equal(answer.varint(), 1, "as one fingerprinted range");
    assert.equal(over.scanned, 0, "no item read");
    assert.ok(reads <= MAX_RANGES_PER_MESSAGE, `${reads} ranges compared: none past the cap`);
    assert.ok(over.work <= RANGE_WORK * MAX_RANGES_PER_MESSAGE + 64, `charged for the ranges read only: ${over.work}`);
    // A message whose ranges up to the cap are all skips answers nothing: refused.
    const skips = new ByteWriter();
    skips.byte(0x61);
    const skipCoder = new BoundCoder();
    for (let i = 0; i <= MAX_RANGES_PER_MESSAGE; i++) {
      skipCoder.write(skips, { t: 2_000_000 + i, id: "" });
      skips.varint(0);
    }
    await assert.rejects(new Reconciler(counted, 0, false).reconcile(skips.view().slice()), (err: Error & { code?: string }) => err.code === "BAD_MESSAGE");
    // At the cap: answered, and charged by its ranges though it reads no item.
    const at = new Reconciler(counted, 0, false);
    const { output } = await at.reconcile(emptyRanges(MAX_RANGES_PER_MESSAGE));
    assert.equal(bytesToHex(output!), "61", "every empty range matched");
    assert.equal(at.scanned, 0);
    assert.ok(at.work >= RANGE_WORK * MAX_RANGES_PER_MESSAGE, `work ${at.work}`);
  });

  it("a responder's answer stops at its work limit after answering a range, and the initiator resumes where it stopped", async () => {
    const { initiator, responder, learn, assertLearned } = spreadPair(6000, 300, 300, 0);
    let msg: Uint8Array | null = await initiator.initiate();
    let rounds = 0;
    while (msg) {
      assert.ok(++rounds < 1000, "terminates");
      const reply = (await responder.reconcile(msg, 200)).output!;
      const r = await initiator.reconcile(reply);
      learn(r);
      msg = r.output;
    }
    assertLearned();
    assert.ok(rounds > 10, `${rounds} rounds: the limit cut answers`);
  });

  it("a reply that does not answer the message as a responder would is refused: pieces outside, too many, fingerprints for an id list, a cut before any answer", () => {
    const b = (t: number): Bound => ({ t, id: "" });
    const fp = (lower: Bound, upper: Bound) => ({ kind: "input" as const, lower, upper, mode: 1 as const, fingerprint: "00".repeat(16) });
    const ids = (lower: Bound, upper: Bound) => ({ kind: "input" as const, lower, upper, mode: 2 as const, ids: [] });
    const sent: SentRange[] = [
      { lower: b(10), upper: b(20), mode: 1 },
      { lower: b(20), upper: b(30), mode: 2 },
      { lower: b(40), upper: b(100), mode: 1 },
    ];
    const bad = (reply: Parameters<typeof checkReply>[0], why: RegExp) => assert.throws(() => checkReply(reply, sent), (err: Error & { code?: string }) => err.code === "BAD_MESSAGE" && why.test(err.message), String(why));
    // Honest shapes: pieces inside, an id list for an id list, a cut after an answer.
    assert.equal(checkReply([fp(b(10), b(15)), fp(b(15), b(20)), ids(b(20), b(30)), fp(b(40), b(100))], sent), 1, "one range came back whole");
    assert.equal(checkReply([ids(b(10), b(20)), ids(b(20), b(25)), fp(b(25), INFINITY_BOUND)], sent), 0, "cut inside our id list");
    bad([fp(b(5), b(15))], /outside/);
    bad([fp(b(30), b(40))], /outside/);
    bad([fp(b(90), b(110))], /outside/);
    bad(Array.from({ length: 17 }, (_, i) => fp(b(40 + i), b(41 + i))), /more than 16 pieces/);
    bad([fp(b(20), b(30))], /id list answered with fingerprints/);
    bad([ids(b(20), b(25)), ids(b(25), b(30))], /more than one/);
    bad([fp(MIN_BOUND, INFINITY_BOUND)], /cut short before answering/);
    bad([fp(b(10), INFINITY_BOUND)], /cut short before answering/);
  });

  it("refuses malformed messages with BAD_MESSAGE, never a crash", async () => {
    const responder = new Reconciler(new ArraySource(randomItems(100, 10)), 0, false);
    for (const bad of ["", "61ff", "6101", "610000030000", "6100002101", "610000029999", `61000001${"00".repeat(15)}`]) {
      await assert.rejects(responder.reconcile(hexToBytes(bad)), (err: Error & { code?: string }) => err.code === "BAD_MESSAGE", bad);
    }
  });
});
