/**
 * A client's intake has a bound across its links (network/client-intake.ts):
 * before, each link had its own bound (8,192 frames, 32 MiB) and nothing
 * bounded them together, so a page with 8 WebRTC peers and 2 servers could
 * hold 10 x 32 MiB of waiting frames (test/browser/client-intake-total.test.ts
 * floods a page from 6 hostile servers). Past the total, the link holding
 * the most lets go of its records first (network/client-shedding.ts), so a
 * flooding link costs an honest one nothing while it holds more. The bounds
 * are the `clientIntake` option's. Manual clock, real intake and shedding.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, MemoryStore, ToolDb, isToolDbError } from "../src/index.js";
import { TimerGroup } from "../src/base/clock.js";
import { CLIENT_INTAKE_LIMITS, DEFAULT_CLIENT_INTAKE } from "../src/network/client-intake.js";
import { ClientShedding, type ShedLink } from "../src/network/client-shedding.js";
import { FairIntake, type IntakeLimits, type LinkIntake } from "../src/network/fair-intake.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { ManualClock } from "./helpers/manual-clock.js";

const T = { timeout: 10_000 };
/** A dispatch that never ends, weighing a link's whole cap: everything after a link's first frame waits. */
const stuck = () => ({ done: new Promise(() => undefined), weight: CLIENT_INTAKE_LIMITS.maxOutstandingPerPeer });

function limits(over: Partial<IntakeLimits>): Required<IntakeLimits> {
  return { ...CLIENT_INTAKE_LIMITS, ...over };
}

const put = (key: string, pad = 0) => JSON.stringify({ type: "put", id: "i", to: [], data: { k: key, v: "x".repeat(pad) } });
const answer = (bytes: number) => JSON.stringify({ type: "functionReturn", id: "i", code: "OK", return: "r".repeat(bytes) });

describe("the intake's bound across links (FairIntake)", () => {
  /** An intake, and links whose first frame is stuck; `crowded` lets go of all a link holds unless `withoutCrowded`. */
  function harness(over: Partial<IntakeLimits>) {
    const clock = new ManualClock();
    const intake = new FairIntake(limits(over), new TimerGroup(clock), () => clock.now());
    const calls: string[] = [];
    const link = (name: string, withoutCrowded = false): LinkIntake => {
      const self: LinkIntake = intake.open({
        dispatch: stuck,
        pause: () => undefined,
        resume: () => undefined,
        held: () => false,
        overflow: () => void calls.push(`overflow ${name}`),
        ...(withoutCrowded ? {} : { crowded: () => void (calls.push(`crowded ${name}`), self.shed(() => false)) }),
      });
      self.push("first");
      return self;
    };
    return { intake, calls, link };
  }

  it("past the total, the link holding the most lets go, not the link whose frame came; the pusher holding the most overflows", T, () => {
    const h = harness({ maxQueuedMessages: 8, maxTotalQueuedMessages: 10 });
    const flood = h.link("flood");
    const honest = h.link("honest");
    for (let i = 0; i < 8; i++) flood.push(`f${i}`);
    honest.push("h0");
    honest.push("h1");
    assert.equal(h.intake.queuedFrames, 10);
    assert.deepEqual(h.calls, []);
    honest.push("h2");
    assert.deepEqual(h.calls, ["crowded flood"], "the flooding link let go; the honest frame was taken");
    assert.deepEqual(honest.queue, ["h0", "h1", "h2"]);
    assert.equal(h.intake.queuedFrames, 3);
    for (let i = 0; i < 7; i++) flood.push(`g${i}`);
    flood.push("g7");
    assert.deepEqual(h.calls, ["crowded flood", "overflow flood"], "the flooding link holds the most: its own frame overflows");
    assert.equal(honest.queue.length, 3);
    h.intake.close();
  });

  it("by length too: the share of the bound counts, whichever of frames or length is larger", T, () => {
    const h = harness({ maxTotalQueuedMessages: 100, maxTotalQueuedBytes: 1000 });
    const large = h.link("large");
    const many = h.link("many");
    large.push("x".repeat(700)); // 70 % of the length
    for (let i = 0; i < 50; i++) many.push("y"); // 50 % of the frames
    assert.equal(h.intake.queuedBytes, 750);
    many.push("z".repeat(300));
    assert.deepEqual(h.calls, ["crowded large"]);
    assert.equal(h.intake.queuedBytes, 350);
    h.intake.close();
  });

  it("a link that lets go of nothing ends the search: the pusher overflows (no endless loop)", T, () => {
    const h = harness({ maxTotalQueuedMessages: 4 });
    const deaf = h.link("deaf", true);
    const other = h.link("other");
    for (let i = 0; i < 3; i++) deaf.push(`d${i}`);
    other.push("o0");
    other.push("o1");
    assert.deepEqual(h.calls, ["overflow other"]);
    h.intake.close();
  });

  it("servers have no total: unset, nothing is counted against one", T, () => {
    const h = harness({ maxTotalQueuedMessages: undefined, maxTotalQueuedBytes: undefined, maxQueuedMessages: 50_000 });
    const a = h.link("a");
    const b = h.link("b");
    for (let i = 0; i < 40_000; i++) (i % 2 ? a : b).push("m");
    assert.deepEqual(h.calls, []);
    assert.equal(h.intake.queuedFrames, 40_000);
    h.intake.close();
  });
});

describe("a client's links past the bounds (ClientShedding)", () => {
  interface TestLink extends ShedLink {
    name: string;
    dropped?: string;
  }

  function client(over: Partial<IntakeLimits>) {
    const clock = new ManualClock();
    const l = limits(over);
    const intake = new FairIntake(l, new TimerGroup(clock), () => clock.now());
    const refused: string[] = [];
    const asked: Array<[string, string[]]> = [];
    const shedding: ClientShedding<TestLink> = new ClientShedding<TestLink>({
      timers: new TimerGroup(clock),
      limits: l,
      refused: (link, reason) => void refused.push(`${link.name}: ${reason}`),
      drop: (link, reason) => void (link.dropped = reason),
      shedDone: (session, keys) => void asked.push([session.clientId, keys]),
    });
    const link = (name: string): TestLink => {
      const self: TestLink = { name, session: { clientId: name } as PeerSession, shed: undefined };
      self.intake = intake.open({
        dispatch: stuck,
        pause: () => undefined,
        resume: () => undefined,
        held: () => false,
        overflow: (frame, allLinks) => shedding.overflowed(self, frame, allLinks),
        crowded: () => shedding.crowded(self),
      });
      self.intake.push("first");
      return self;
    };
    /** As link-table.ts takes a frame: a shedding link's records go as they come. */
    const arrive = (l: TestLink, frame: string) => {
      if (l.shed && !l.shed.keep(frame)) return;
      l.intake!.push(frame);
    };
    return { clock, intake, refused, asked, link, arrive };
  }

  it("a flooding link lets go of its records when all links' queues are full, keeps its other frames, and is asked for the keys once its records stop; the honest link keeps everything", T, () => {
    const c = client({ maxQueuedMessages: 100, maxTotalQueuedMessages: 120 });
    const flood = c.link("flood");
    const honest = c.link("honest");
    for (let i = 0; i < 99; i++) c.arrive(flood, put(`feed/${i % 10}`));
    c.arrive(flood, answer(10));
    for (let i = 0; i < 20; i++) c.arrive(honest, put(`news/${i}`));
    assert.deepEqual(c.refused, []);
    c.arrive(honest, put("news/20"));
    assert.equal(c.refused.length, 1);
    assert.match(c.refused[0]!, /^flood: the most of the frames waiting to be taken in from all links/);
    assert.equal(honest.intake!.queue.length, 21, "the honest link kept all it sent");
    assert.equal(flood.intake!.queue.length, 1, "the flooding link kept its answer");
    // Its records go as they come until they stop for 1 s; then the keys let go are asked again.
    for (let i = 0; i < 500; i++) c.arrive(flood, put(`feed/${i % 10}`));
    assert.equal(flood.intake!.queue.length, 1);
    c.clock.advance(999);
    c.arrive(flood, put("feed/x"));
    c.clock.advance(999);
    assert.deepEqual(c.asked, [], "still coming: not asked yet");
    flood.intake!.shed(() => false); // its answer taken in
    c.clock.advance(1);
    assert.deepEqual(c.asked, [["flood", [...Array.from({ length: 10 }, (_, i) => `feed/${i}`), "feed/x"]]]);
    assert.equal(honest.dropped ?? flood.dropped, undefined, "no link dropped");
    c.intake.close();
  });

  it("a link that let go of its records past the total, no longer holding the most, has its answer taken once the link now holding the most lets go", T, () => {
    const [record, bRecord, held, next] = [put("a/1", 100), put("b/1", 100), answer(400), answer(200)];
    const c = client({ maxTotalQueuedBytes: record.length + held.length + 3 * bRecord.length });
    const a = c.link("a");
    const b = c.link("b");
    c.arrive(a, record);
    c.arrive(a, held);
    for (let i = 0; i < 3; i++) c.arrive(b, bRecord);
    assert.deepEqual(c.refused, []);
    // a holds the most: its record goes; b then holds more than a, and a's answer still finds no room until b lets go.
    c.arrive(a, next);
    assert.equal(c.refused.length, 2);
    assert.match(c.refused[0]!, /^a: the most of the frames waiting/);
    assert.match(c.refused[1]!, /^b: the most of the frames waiting/);
    assert.deepEqual(a.intake!.queue, [held, next]);
    assert.equal(a.dropped ?? b.dropped, undefined);
    c.intake.close();
  });

  it("a link holding the most, with nothing to let go but answers, is dropped; the honest frame is taken", T, () => {
    const c = client({ maxQueuedMessages: 100, maxTotalQueuedMessages: 60 });
    const flood = c.link("flood");
    const honest = c.link("honest");
    for (let i = 0; i < 50; i++) c.arrive(flood, answer(10));
    for (let i = 0; i < 10; i++) c.arrive(honest, put(`news/${i}`));
    c.arrive(honest, put("news/10"));
    assert.match(flood.dropped ?? "", /from all links, past what a client holds for all, not records: link dropped/);
    assert.equal(flood.intake!.queue.length, 0, "its queue freed at once");
    assert.equal(honest.dropped, undefined);
    assert.equal(honest.intake!.queue.length, 11);
    assert.equal(c.intake.queuedFrames, 11);
    c.intake.close();
  });

  it("a link whose queue fills by length with frames that are not records is dropped (before: overflow and push called each other until the stack overflowed)", T, () => {
    const c = client({ maxQueuedBytes: 1024 * 1024 });
    const link = c.link("big");
    for (let i = 0; i < 3; i++) c.arrive(link, answer(300 * 1024));
    assert.equal(link.dropped, undefined);
    assert.doesNotThrow(() => c.arrive(link, answer(300 * 1024)));
    assert.match(link.dropped ?? "", /for one link, not records: link dropped/);
    c.intake.close();
  });
});

describe("the clientIntake option", () => {
  it("sets a client's intake limits, the rest at their defaults; a server takes its frames with `limits`", T, async () => {
    const client = new ToolDb({ topic: "client-intake-option", storageAdapter: MemoryStore, clientIntake: { maxTotalQueuedBytes: 1234, maxQueuedMessages: Infinity } });
    const server = new ToolDb({ topic: "client-intake-option", server: true, port: 0, storageAdapter: MemoryStore, clientIntake: { maxOutstanding: 1 } });
    try {
      const got = client.network.guard.intakeLimits;
      assert.deepEqual(got, { ...CLIENT_INTAKE_LIMITS, maxTotalQueuedBytes: 1234, maxQueuedMessages: Infinity });
      assert.equal(server.network.guard.intakeLimits, server.network.guard.limits);
      assert.equal(DEFAULT_CLIENT_INTAKE.maxTotalQueuedBytes, 48 * 1024 * 1024);
      assert.equal(DEFAULT_CLIENT_INTAKE.maxTotalQueuedMessages, 16_384);
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });

  for (const [given, message] of [
    [5, /option clientIntake must be an object/],
    [{ maxTotalQueuedBytes: 0 }, /option clientIntake\.maxTotalQueuedBytes must be a whole number >= 1 \(or Infinity\), got number 0/],
    [{ maxQueuedMessages: 1.5 }, /option clientIntake\.maxQueuedMessages must be a whole number >= 1/],
    [{ maxOutstanding: "8" }, /option clientIntake\.maxOutstanding must be a whole number >= 1 \(or Infinity\), got the string "8"/],
    [{ messageRate: 10 }, /unknown option clientIntake\.messageRate/],
  ] as const) {
    it(`refuses clientIntake ${JSON.stringify(given)} at once with INVALID_ARGUMENT`, T, () => {
      assert.throws(
        () => new ToolDb({ topic: "client-intake-option", storageAdapter: MemoryStore, clientIntake: given as never }),
        (err: unknown) => isToolDbError(err, ErrorCode.INVALID_ARGUMENT) && message.test(err.message),
      );
    });
  }
});
