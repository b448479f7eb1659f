/**
 * WebRTC slot rotation (outside check "D5": Sybils that link to a page first
 * held its slots forever). The policy alone, on a hand-driven tick count and
 * clock: who may be replaced, at most one a tick, probation, the merit
 * window, the cooldown. Then Node peers on real data channels (node-
 * datachannel) through a loopback tracker, with the rotation timer driven
 * by the test (GatedClock): a full node that no newcomer asks of keeps its
 * links; a newcomer takes the slot of the linked peer that delivered nothing
 * asked for, never that of the peer that served the node's read; a second
 * newcomer in the same tick is refused.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb, type RefusalEvent, type ToolDbOptions } from "../src/index.js";
import { COOLDOWN_TICKS, PROBATION_TICKS, SlotRotation, type SlotHolder } from "../src/network/slot-rotation.js";
import { signRecord } from "../src/node/record-signer.js";
import { type LocalTracker, localTracker, rtcOn } from "./helpers/tracker.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { withTimeout } from "./helpers/wait.js";
import { GatedClock } from "./helpers/manual-clock.js";
import { testAuthor } from "./helpers/signed-records.js";

const T = 30_000;
const MERIT_MS = 60_000;

describe("WebRTC slot rotation: the policy", { timeout: 10_000 }, () => {
  let now = 1_000_000;
  const slots = () => new SlotRotation({ meritWindow: MERIT_MS }, () => now);
  const holder = (s: SlotRotation, servedAt = 0, answeredAt = 0, session = true): SlotHolder => ({ sinceTick: s.tick, seq: s.nextSeq(), session: session ? { servedAt, answeredAt } : undefined });
  const ticks = (s: SlotRotation, n: number) => {
    for (let i = 0; i < n; i++) s.nextTick();
  };

  it("nothing is replaced while on probation, or before the handshake", () => {
    const s = slots();
    const held = [holder(s), holder(s, 0, 0, false)];
    ticks(s, PROBATION_TICKS - 1);
    assert.equal(s.victim(held), undefined);
    s.nextTick();
    assert.equal(s.victim(held), held[0], "past probation; the link still handshaking never");
  });

  it("a peer that delivered an asked-for record within the merit window is kept; then it goes after those that never did, oldest first", () => {
    const s = slots();
    const served = holder(s, now - 1000);
    const answered = holder(s, 0, now - 1000);
    const idleOld = holder(s);
    const idleYoung = holder(s);
    ticks(s, PROBATION_TICKS);
    assert.equal(s.victim([served, answered, idleYoung, idleOld]), idleOld, "idle links first, the oldest of them");
    assert.equal(s.victim([served, answered, idleYoung]), idleYoung);
    assert.equal(s.victim([served, answered]), answered, "a query answered is weaker than a record delivered");
    assert.equal(s.victim([served]), undefined, "a link that served lately is never replaced");
    now += MERIT_MS;
    assert.equal(s.victim([served]), served, "past the merit window it takes its turn");
  });

  it("when a peer answered does not order links: a peer that answers last each time does not get a younger honest link replaced before it", () => {
    const s = slots();
    // Both answer the node's queries; the fake (linked first) times its answers to come in last.
    const fake = holder(s, 0, now);
    const honest = holder(s, 0, now - 50);
    ticks(s, PROBATION_TICKS);
    assert.equal(s.victim([honest, fake]), fake, "the honest link went first for answering 50 ms sooner");
  });

  it("at most one link is replaced a tick, however many newcomers ask", () => {
    const s = slots();
    const held = Array.from({ length: 8 }, () => holder(s));
    ticks(s, PROBATION_TICKS);
    let replaced = 0;
    for (let offer = 0; offer < 100; offer++) {
      const victim = s.victim(held);
      if (!victim) continue;
      held.splice(held.indexOf(victim), 1, holder(s));
      s.rotated(`sybil-${offer}`);
      replaced++;
    }
    assert.equal(replaced, 1);
    s.nextTick();
    assert.ok(s.victim(held), "the next tick may replace another (one of the old links: the newcomer is on probation)");
    assert.notEqual(s.victim(held)?.sinceTick, s.tick - 1);
  });

  it("a replaced peer's tracker id is refused for the cooldown, then forgotten", () => {
    const s = slots();
    s.rotated("abc");
    assert.ok(s.coolingDown("abc"));
    assert.ok(!s.coolingDown("other") && !s.coolingDown(undefined));
    ticks(s, COOLDOWN_TICKS - 1);
    assert.ok(s.coolingDown("abc"));
    s.nextTick();
    assert.ok(!s.coolingDown("abc"));
  });
});

describe("WebRTC slot rotation: Node peers on real data channels", () => {
  const nodes: ToolDb[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function node(topic: string, opts: Partial<ToolDbOptions>): Promise<ToolDb> {
    const db = new ToolDb({ topic, ...FAST, ...opts });
    nodes.push(db);
    await db.ready;
    return db;
  }
  const linkedTo = (a: ToolDb, ...others: ToolDb[]) => others.every((o) => a.network.isConnected(o.network.getClientAddress()));

  it("a full node keeps the peer that served its read, gives the idle peer's slot to a newcomer, and refuses a second newcomer in the same tick", { timeout: 150_000 }, async () => {
    const t: LocalTracker = await localTracker();
    cleanups.push(() => t.close());
    const topic = `rtc-slots-${process.pid}`;
    // Only A's rotation ticks wait for the test; everything else runs in real time.
    const clock = new GatedClock(7_777);
    const a = await node(topic, { networkAdapter: rtcOn(t, { maxPeers: 2, rotateInterval: clock.gatedMs }), clock });
    const rotations: RefusalEvent[] = [];
    a.on("refused", (e) => /rotated out/.test(e.reason) && rotations.push(e));
    const p1 = await node(topic, { networkAdapter: rtcOn(t) });
    const p2 = await node(topic, { networkAdapter: rtcOn(t) });
    await waitUntil(() => linkedTo(a, p1, p2), T, "A linked to P1 and P2");

    // P1 holds a record A does not (stored directly, never pushed); A reads it: P1 served A.
    const record = await signRecord(await testAuthor(), "held-by-p1", "from P1", Date.now(), 0, false);
    await p1.records.merge(record);
    assert.equal(await a.getData("held-by-p1", false, T), "from P1");

    // Two ticks: both links are past probation. With no newcomer in the swarm nothing rotates.
    clock.advance(clock.gatedMs);
    clock.advance(clock.gatedMs);
    assert.ok(linkedTo(a, p1, p2));
    assert.equal(rotations.length, 0, "no rotation");

    // A newcomer's first offers reach every peer: at A it takes P2's slot (P2 delivered nothing asked for).
    const c = await node(topic, { networkAdapter: rtcOn(t) });
    await waitUntil(() => linkedTo(a, p1, c), T, "the newcomer C to link to A");
    assert.ok(!linkedTo(a, p2), "P2's slot went to C");
    assert.deepEqual(
      rotations.map((e) => e.peer),
      [p2.network.getClientAddress()],
    );

    // A second newcomer in the same tick: its offers reach A too, and are refused (one rotation a tick).
    const d = await node(topic, { networkAdapter: rtcOn(t) });
    await waitUntil(() => linkedTo(d, p1, p2, c), T, "D to link to the others");
    assert.ok(linkedTo(a, p1, c) && !linkedTo(a, d), "A keeps P1 and C");
    assert.equal(rotations.length, 1);
    assert.ok(a.network.peers.length <= 2);
  });
});
