/**
 * SwarmSlots, the rotation of a Hyperswarm client's swarm slots (make before
 * break), driven tick by tick with stand-in links, peer records and timers (the policy itself is
 * tested in webrtc-slots.test.ts; the real swarm in
 * hyperswarm-announce-eclipse.test.ts).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { PeerInfo } from "hyperswarm";
import type { Connection } from "../src/network/connection.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { SwarmSlots } from "../src/network/swarm-slots.js";
import { SwarmBans } from "../src/network/swarm-bans.js";
import { COOLDOWN_TICKS, PROBATION_TICKS } from "../src/network/slot-rotation.js";
import { HyperswarmNetwork } from "../src/network/hyperswarm-network.js";
import { ErrorCode } from "../src/base/errors.js";
import type { TimerHandle } from "../src/base/clock.js";
import { createLogger } from "../src/base/logger.js";

const MERIT_MS = 60_000;

class Link extends EventEmitter {
  closed = false;
  close(): void {
    this.closed = true;
    this.emit("close", 4008);
  }
}

type FakePeer = PeerInfo & { banned: boolean };

function peer(n: number): FakePeer {
  const info = { publicKey: Buffer.alloc(32, n), banned: false, ban: (value: boolean) => void (info.banned = value) };
  return info as unknown as FakePeer;
}

const REPLACE_MS = 5_000;

function rig(slots = 3, bans = new SwarmBans()) {
  let now = 1_000_000;
  type Held = { link: Link; info: ReturnType<typeof peer>; session: { connection: Link; servedAt: number; answeredAt: number; askedForRecords: boolean; provenServer: boolean } };
  const links: Held[] = [];
  const out: Link[] = [];
  const extra: Link[] = [];
  let refreshes = 0;
  let others = true;
  let dialingNow = false;
  let widened = false;
  const timers = new Map<number, { fn: () => void; at: number }>();
  let timerIds = 0;
  const open = () => links.filter((l) => !l.link.closed).length;
  const swarm = new SwarmSlots(
    {
      full: () => open() >= slots,
      canDialAnother: () => others,
      dialing: () => dialingNow,
      rotateOut: (connection) => {
        out.push(connection as unknown as Link);
        (connection as unknown as Link).close();
      },
      refresh: () => void refreshes++,
      widen: (on) => void (widened = on),
      overCap: () => Math.max(0, open() - slots),
      closeExtra: (connection) => {
        extra.push(connection as unknown as Link);
        (connection as unknown as Link).close();
      },
      setTimeout: (fn, ms) => {
        timers.set(++timerIds, { fn, at: now + ms });
        return timerIds as unknown as TimerHandle;
      },
      clearTimeout: (handle) => void timers.delete(handle as unknown as number),
      log: createLogger("test:swarm-slots"),
    },
    bans,
    MERIT_MS,
    () => now,
    REPLACE_MS,
  );
  /** A link the swarm dialed; `server`: its handshake ends as a proven server (null: still handshaking). */
  const add = (n: number, server: boolean | null = true) => {
    const link = new Link();
    const info = peer(n);
    const session = { connection: link, servedAt: 0, answeredAt: 0, askedForRecords: true, provenServer: server === true };
    const held = { link, info, session };
    links.push(held); // hyperswarm counts a link before it reports it
    swarm.dialed(link as unknown as Connection, info);
    if (server !== null) swarm.sessionOpened(session as unknown as PeerSession);
    return held;
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, t] of [...timers]) {
      if (t.at > now) continue;
      timers.delete(id);
      t.fn();
    }
  };
  const othersKnown = (known: boolean) => void (others = known);
  const dialing = (now: boolean) => void (dialingNow = now);
  return { swarm, add, out, extra, open, othersKnown, dialing, widened: () => widened, refreshes: () => refreshes, advance, now: () => now };
}

/** Two slots, b served lately: a rotation dials a replacement for a. */
function rotatingForA() {
  const r = rig(2);
  const [a, b] = [r.add(1), r.add(2)];
  b.session.servedAt = r.now();
  for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
  assert.equal(r.swarm.rotating, true);
  return { r, a, b };
}

describe("swarm slot rotation", () => {
  it("replaces one link a tick only while full and past probation, keeps a peer that served, and bans the one rotated out for the cooldown", () => {
    const r = rig(3);
    const [a, b, c] = [r.add(1), r.add(2), r.add(3)];
    for (let i = 0; i < PROBATION_TICKS - 1; i++) r.swarm.tick();
    assert.equal(r.swarm.rotating, false, "rotated during probation");
    b.session.servedAt = r.now(); // b delivered a record the node asked for
    r.swarm.tick();
    assert.equal(r.out.length, 0, "closed before a replacement was linked");
    assert.equal(r.widened(), true, "the swarm may not dial one link over the cap");
    assert.equal(r.refreshes(), 1);
    const d = r.add(4);
    assert.deepEqual(r.out, [a.link], "the oldest link without merit goes first, once a server replaced it");
    assert.equal(r.widened(), false, "the cap is back");
    assert.equal(a.info.banned, true);
    assert.equal(r.open(), 3);
    r.swarm.tick();
    const e = r.add(5);
    assert.deepEqual(r.out, [a.link, c.link], "c (no merit) before d (probation) and b (served)");
    for (let i = 0; i < COOLDOWN_TICKS; i++) r.swarm.tick();
    assert.equal(a.info.banned, false, "the ban is lifted after the cooldown");
    for (const kept of [b, d, e]) assert.equal(kept.link.closed, false);
  });

  it("a rotation with no server linked within replaceTimeout is abandoned: the old link stays, the cap is back, a link still handshaking for it is closed", () => {
    const r = rig(1);
    const a = r.add(1);
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
    assert.equal(r.swarm.rotating, true);
    const liar = r.add(2, false); // says it is no server (closed by the transport): no replacement
    liar.link.close();
    const stalling = r.add(3, null); // linked, its handshake never ends
    r.swarm.tick(); // one rotation in flight: the tick starts no other
    r.advance(REPLACE_MS - 1);
    assert.equal(r.swarm.rotating, true);
    r.advance(1);
    assert.equal(r.swarm.rotating, false);
    assert.equal(r.widened(), false);
    assert.equal(a.link.closed, false, "the old link was closed with no replacement");
    assert.equal(a.info.banned, false);
    assert.deepEqual(r.extra, [stalling.link], "the link dialed for the abandoned rotation kept a slot over the cap");
    assert.equal(r.open(), 1);
    const late = r.add(4); // a dial in flight when the rotation ended lands
    assert.deepEqual(r.extra, [stalling.link, late.link]);
    assert.deepEqual(r.out, []);
    r.swarm.tick(); // the next rotation tries again
    assert.equal(r.swarm.rotating, true);
    r.add(5);
    assert.deepEqual(r.out, [a.link]);
    assert.equal(r.open(), 1);
  });

  it("an abandoned rotation closes only as many links still handshaking as the swarm holds over its cap, newest first", () => {
    const { r, a, b } = rotatingForA();
    b.link.close(); // another link went: its slot is refilled while the rotation dials
    const first = r.add(3, null);
    const second = r.add(4, null);
    r.advance(REPLACE_MS);
    assert.equal(r.swarm.rotating, false);
    assert.deepEqual(r.extra, [second.link]);
    assert.equal(first.link.closed, false, "a link that took a free slot was closed");
    assert.equal(a.link.closed, false);
    assert.equal(r.open(), 2);
  });

  it("a rotation ends when the link it is for closes by itself; one whose every other link earned its slot meanwhile drops the newcomer", () => {
    const { r, a, b } = rotatingForA();
    a.link.close();
    assert.equal(r.swarm.rotating, false);
    assert.equal(r.widened(), false);
    const c = r.add(3);
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
    assert.equal(r.swarm.rotating, true, "c has no merit");
    c.session.servedAt = r.now(); // it served meanwhile, as b did
    const d = r.add(4);
    assert.deepEqual(r.out, [], "a link that earned its slot was rotated out");
    assert.deepEqual(r.extra, [d.link]);
    assert.equal(r.open(), 2);
  });

  it("a rotation's abandoned candidates (still handshaking at replaceTimeout, landed late, or not needed) are banned for the cooldown, so the next rotation dials another", () => {
    const r = rig(1);
    const a = r.add(1);
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
    const stalling = r.add(2, null);
    r.advance(REPLACE_MS);
    assert.deepEqual(r.extra, [stalling.link]);
    assert.equal(stalling.info.banned, true, "a candidate that never proved itself can be dialed again at the next rotation");
    const late = r.add(3);
    assert.equal(late.info.banned, true, "a candidate that landed after its rotation ended is not kept away");
    r.swarm.tick();
    assert.equal(r.swarm.rotating, true);
    a.session.servedAt = r.now(); // the link the rotation is for earns its slot meanwhile
    const unneeded = r.add(4);
    assert.deepEqual(r.extra, [stalling.link, late.link, unneeded.link]);
    assert.equal(unneeded.info.banned, true, "a newcomer dropped for links that earned their slots is not kept away");
    assert.equal(a.link.closed, false);
    for (let i = 0; i < COOLDOWN_TICKS; i++) r.swarm.tick();
    for (const p of [stalling, late, unneeded]) assert.equal(p.info.banned, false, "the cooldown never ends");
  });

  it("a link never asked for a record (a client that only writes) is not judged", () => {
    const r = rig(2);
    const [a, b] = [r.add(1), r.add(2)];
    a.session.askedForRecords = false;
    b.session.askedForRecords = false;
    for (let i = 0; i < PROBATION_TICKS + 3; i++) r.swarm.tick();
    assert.equal(r.swarm.rotating, false, "a rotation began for a link never asked for anything");
    b.session.askedForRecords = true; // the client read a key: b is judged now, a still not
    r.swarm.tick();
    r.add(3);
    assert.deepEqual(r.out, [b.link]);
  });

  it("a rotation's ban ending does not lift a ban another rule holds on the same peer (one hyperswarm flag, several reasons)", () => {
    const bans = new SwarmBans();
    const r = rig(2, bans);
    const [a] = [r.add(1), r.add(2)];
    bans.hold(a.info); // e.g. shunned, or a duplicate held off while its kept link stands
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
    r.add(3);
    assert.deepEqual(r.out, [a.link]);
    for (let i = 0; i < COOLDOWN_TICKS; i++) r.swarm.tick();
    assert.equal(a.info.banned, true, "the rotation's end lifted the other rule's ban");
    assert.equal(bans.count(a.info), 1);
    bans.release(a.info);
    assert.equal(a.info.banned, false);
    bans.release(a.info); // a release without a hold does nothing
    assert.equal(bans.count(a.info), 0);
  });

  it("a peer's merit lapses after the merit window", () => {
    const r = rig(2);
    const [a, b] = [r.add(1), r.add(2)];
    a.session.servedAt = r.now();
    b.session.servedAt = r.now();
    for (let i = 0; i < PROBATION_TICKS + 2; i++) r.swarm.tick();
    assert.equal(r.swarm.rotating, false, "both served lately");
    r.advance(MERIT_MS + 1);
    b.session.servedAt = r.now();
    r.swarm.tick();
    r.add(3);
    assert.deepEqual(r.out, [a.link]);
  });

  it("no rotation begins while the swarm knows no other announcer to take the slot", () => {
    const r = rig(1);
    const a = r.add(1);
    r.othersKnown(false);
    for (let i = 0; i < PROBATION_TICKS + 3; i++) r.swarm.tick();
    assert.equal(r.swarm.rotating, false, "a rotation began for nobody");
    r.othersKnown(true);
    r.swarm.tick();
    r.add(2);
    assert.deepEqual(r.out, [a.link]);
  });

  it("a slot left unfilled (nothing dialing) lifts the bans early and looks the topic up again", () => {
    const r = rig(1);
    const a = r.add(1);
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
    const b = r.add(2);
    assert.deepEqual(r.out, [a.link]);
    assert.equal(a.info.banned, true);
    b.link.close(); // the replacement went away
    const refreshes = r.refreshes();
    r.dialing(true);
    r.swarm.tick();
    assert.equal(a.info.banned, true, "lifted while another announcer was still being dialed");
    r.dialing(false); // nothing could be reached
    r.swarm.tick();
    assert.equal(a.info.banned, false, "the only server stayed banned with its slot free");
    assert.equal(r.refreshes(), refreshes + 1);
  });

  it("bad swarm slot options are refused with INVALID_ARGUMENT", () => {
    for (const bad of [{ maxPeers: 0 }, { maxPeers: 1.5 }, { rotateInterval: -1 }, { rotateInterval: Number.NaN }, { meritWindow: "10" as unknown as number }, { replaceTimeout: -1 }, { closeLinger: -1 }, { closeLinger: 2 ** 31 }]) {
      assert.throws(() => HyperswarmNetwork.with(bad), (err: { code?: string }) => err.code === ErrorCode.INVALID_ARGUMENT, JSON.stringify(bad));
    }
  });
});
