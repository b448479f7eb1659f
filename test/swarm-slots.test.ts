/**
 * SwarmSlots, the rotation of a Hyperswarm client's swarm slots, driven
 * tick by tick with stand-in links and peer records (the policy itself is
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

function rig(slots = 3, bans = new SwarmBans()) {
  let now = 1_000_000;
  const links: Array<{ link: Link; info: ReturnType<typeof peer>; session: { connection: Link; servedAt: number; answeredAt: number; askedForRecords: boolean } }> = [];
  const out: Link[] = [];
  let refreshes = 0;
  let others = true;
  let dialingNow = false;
  const swarm = new SwarmSlots(
    {
      full: () => links.filter((l) => !l.link.closed).length >= slots,
      canDialAnother: () => others,
      dialing: () => dialingNow,
      rotateOut: (connection) => {
        out.push(connection as unknown as Link);
        (connection as unknown as Link).close();
      },
      refresh: () => void refreshes++,
      log: createLogger("test:swarm-slots"),
    },
    bans,
    MERIT_MS,
    () => now,
  );
  const add = (n: number) => {
    const link = new Link();
    const info = peer(n);
    const session = { connection: link, servedAt: 0, answeredAt: 0, askedForRecords: true };
    swarm.dialed(link as unknown as Connection, info);
    swarm.sessionOpened(session as unknown as PeerSession);
    links.push({ link, info, session });
    return links.at(-1)!;
  };
  const othersKnown = (known: boolean) => void (others = known);
  const dialing = (now: boolean) => void (dialingNow = now);
  return { swarm, add, out, othersKnown, dialing, refreshes: () => refreshes, advance: (ms: number) => (now += ms), now: () => now };
}

describe("swarm slot rotation", () => {
  it("frees one slot a tick only while full and past probation, keeps a peer that served, and bans the one rotated out for the cooldown", () => {
    const r = rig(3);
    const [a, b, c] = [r.add(1), r.add(2), r.add(3)];
    for (let i = 0; i < PROBATION_TICKS - 1; i++) r.swarm.tick();
    assert.equal(r.out.length, 0, "rotated during probation");
    b.session.servedAt = r.now(); // b delivered a record the node asked for
    r.swarm.tick();
    assert.deepEqual(r.out, [a.link], "the oldest link without merit goes first");
    assert.equal(a.info.banned, true);
    assert.equal(r.refreshes(), 1);
    r.dialing(true);
    r.swarm.tick(); // not full any more, another peer being dialed for the slot: nothing
    assert.equal(r.out.length, 1);
    assert.equal(a.info.banned, true, "the ban was lifted while the slot was being refilled");
    r.dialing(false);
    const d = r.add(4);
    r.swarm.tick();
    assert.deepEqual(r.out, [a.link, c.link], "c (no merit) before d (probation) and b (served)");
    for (let i = 0; i < COOLDOWN_TICKS; i++) r.swarm.tick();
    assert.equal(a.info.banned, false, "the ban is lifted after the cooldown");
    assert.equal(b.link.closed, false);
    assert.equal(d.link.closed, false);
  });

  it("a link never asked for a record (a client that only writes) is not judged", () => {
    const r = rig(2);
    const [a, b] = [r.add(1), r.add(2)];
    a.session.askedForRecords = false;
    b.session.askedForRecords = false;
    for (let i = 0; i < PROBATION_TICKS + 3; i++) r.swarm.tick();
    assert.equal(r.out.length, 0, "a link was rotated out that was never asked for anything");
    b.session.askedForRecords = true; // the client read a key: b is judged now, a still not
    r.swarm.tick();
    assert.deepEqual(r.out, [b.link]);
  });

  it("a rotation's ban ending does not lift a ban another rule holds on the same peer (one hyperswarm flag, several reasons)", () => {
    const bans = new SwarmBans();
    const r = rig(2, bans);
    const [a] = [r.add(1), r.add(2)];
    bans.hold(a.info); // e.g. shunned, or a duplicate held off while its kept link stands
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
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
    assert.equal(r.out.length, 0, "both served lately");
    r.advance(MERIT_MS + 1);
    b.session.servedAt = r.now();
    r.swarm.tick();
    assert.deepEqual(r.out, [a.link]);
  });

  it("no slot is freed while the swarm knows no other announcer to take it", () => {
    const r = rig(1);
    const a = r.add(1);
    r.othersKnown(false);
    for (let i = 0; i < PROBATION_TICKS + 3; i++) r.swarm.tick();
    assert.equal(r.out.length, 0, "the only peer was rotated out for nobody");
    r.othersKnown(true);
    r.swarm.tick();
    assert.deepEqual(r.out, [a.link]);
  });

  it("a slot left unfilled (nothing dialing) lifts the bans early and looks the topic up again", () => {
    const r = rig(1);
    const a = r.add(1);
    for (let i = 0; i < PROBATION_TICKS; i++) r.swarm.tick();
    assert.deepEqual(r.out, [a.link]);
    assert.equal(a.info.banned, true);
    const refreshes = r.refreshes();
    r.dialing(true);
    r.swarm.tick();
    assert.equal(a.info.banned, true, "lifted while the replacement was still being dialed");
    r.dialing(false); // the announcer the slot was freed for could not be reached
    r.swarm.tick();
    assert.equal(a.info.banned, false, "the only server stayed banned with its slot free");
    assert.equal(r.refreshes(), refreshes + 1);
  });

  it("bad swarm slot options are refused with INVALID_ARGUMENT", () => {
    for (const bad of [{ maxPeers: 0 }, { maxPeers: 1.5 }, { rotateInterval: -1 }, { rotateInterval: Number.NaN }, { meritWindow: "10" as unknown as number }]) {
      assert.throws(() => HyperswarmNetwork.with(bad), (err: { code?: string }) => err.code === ErrorCode.INVALID_ARGUMENT, JSON.stringify(bad));
    }
  });
});
