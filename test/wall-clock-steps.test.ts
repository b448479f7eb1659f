/**
 * A timer armed from a due-time read off the wall clock (`now()`,
 * Date.now()) ran late by the size of a backward wall-clock step (NTP, a VM
 * resumed, `date -s`): the timer fired on time, found its due-time still an
 * hour ahead, and waited again (or a hurry found the deadline already near,
 * after a step forward, and did not hurry). Due-times that arm timers are
 * monotonic now (`Clock.monotonic`, performance.now() in Node); each case
 * steps ManualClock's wall time (`stepWall`) between the due-time and its
 * timer. Through the node where the node wires the clock in (bans, the
 * broadcast tree's repair). Elsewhere: the server pickers in
 * early-timers.test.ts, the 2.6.6 ping slot in legacy-reasks.test.ts, DHT
 * lookups in discovery/schedule.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TimerGroup } from "../src/base/clock.js";
import { createLogger } from "../src/base/logger.js";
import { CloseCode } from "../src/network/connection.js";
import { ShedAsks } from "../src/network/intake-shed.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { DEFAULT_BROADCAST } from "../src/node/broadcast/broadcast-tree.js";
import { PendingRequests } from "../src/node/pending-requests.js";
import type { PeerInfo, ToolDb } from "../src/index.js";
import type { CandidatePool } from "../src/peering/candidate-pool.js";
import { MeshRotation } from "../src/peering/mesh-rotation.js";
import { closeAll, startServer } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";

const HOUR = 3_600_000;

/** A link that logs the types of the frames sent on it. */
function loggingPeer(sent: string[]): PeerSession {
  return { connection: { closed: false }, send: (m: { type: string }) => (sent.push(m.type), true) } as unknown as PeerSession;
}

describe("timers armed from due-times keep their time across a wall-clock step", { timeout: 30_000 }, () => {
  it("a node's ban ends when its duration has passed, the wall clock stepped back an hour", async () => {
    const clock = new ManualClock(Date.now());
    const db = await startServer({ clock });
    try {
      const { bans, limits } = db.network.guard;
      bans.offence("someone", undefined, "test");
      assert.ok(bans.identity("someone"), "banned");
      clock.stepWall(-HOUR);
      clock.advance(limits.banDuration + 1);
      assert.equal(bans.identity("someone"), undefined, "the ban ended (before: an hour later)");
    } finally {
      await closeAll(db);
    }
  });

  it("a server grafts a hash it was announced and lacks graftTimeout after the announce, the wall clock stepped back an hour", async () => {
    const clock = new ManualClock(Date.now());
    const db = await startServer({ clock });
    try {
      const sent: string[] = [];
      const repair = (db.broadcast as unknown as { repair: { announced(hash: string, from: PeerSession): void } }).repair;
      repair.announced("a".repeat(43), loggingPeer(sent));
      clock.stepWall(-HOUR);
      clock.advance(DEFAULT_BROADCAST.graftTimeout);
      assert.deepEqual(sent, ["graft"], "grafted (before: its timer fired, found the hash not due, and waited an hour)");
    } finally {
      await closeAll(db);
    }
  });

  it("a request hurried after a step forward times out within the hurry", () => {
    const clock = new ManualClock(Date.now());
    const table = new PendingRequests<string>(16, clock);
    let timedOut = false;
    table.add("id", 5000, () => undefined, () => void (timedOut = true));
    clock.stepWall(HOUR);
    table.hurry("id", 100);
    clock.advance(100);
    assert.equal(timedOut, true, "before: its deadline read as past, it was not hurried and waited its 5 s");
  });

  it("keys a link let go are asked again everyMs after the last ask, the wall clock stepped back an hour", () => {
    const clock = new ManualClock(Date.now());
    const asked: string[][] = [];
    const shed = new ShedAsks(new TimerGroup(clock), 2000, (keys) => void asked.push(keys));
    shed.note("a");
    clock.advance(0);
    clock.stepWall(-HOUR);
    shed.note("b");
    clock.advance(2000);
    assert.deepEqual(asked, [["a"], ["b"]]);
  });

  it("a server dials a server whose link died again when its wait ends, the wall clock stepped back an hour", () => {
    const clock = new ManualClock(Date.now());
    const dials: string[] = [];
    const network = { canDial: true, peers: [], serverPeers: [{ address: "kept" }], dialTargets: () => [], connectTo: (host: string, port: number) => void dials.push(`${host}:${port}`) };
    const db = { now: () => clock.now(), monotonic: () => clock.monotonic(), isClosed: false, network } as unknown as ToolDb;
    const deps = { db, pool: {} as CandidatePool, timers: new TimerGroup(clock), random: () => 0.5, minLinks: 1, intervalMs: 0, redialLostMs: 1000, firstContactMs: 1000, log: createLogger("test:mesh-rotation") };
    const rotation = new MeshRotation(deps);
    const lost = { isServer: true, outgoing: true, host: "10.0.0.2", port: 9000, address: "lost", code: CloseCode.HEARTBEAT_TIMEOUT };
    rotation.disconnected(lost as unknown as PeerInfo & { code: number });
    clock.stepWall(-HOUR);
    clock.advance(999);
    assert.deepEqual(dials, [], "not before its wait (1 s) ends");
    clock.advance(1);
    assert.deepEqual(dials, ["10.0.0.2:9000"], "dialed when it ended (before: an hour later)");
    rotation.stop();
  });
});
