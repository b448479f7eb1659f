/**
 * The pings that let a tool-db 2.6.6 peer answer a get again
 * (src/node/legacy-reasks.ts), on a manual clock: only for a key the peer
 * sent on the link, one ping for a burst of asks, at most one a link every
 * PING_INTERVAL_MS, never to a proven (tooldb-dht) peer. Against real 2.6.6
 * nodes: interop-reread.test.ts, interop-reask-links.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LegacyReasks, PING_INTERVAL_MS } from "../src/node/legacy-reasks.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { ToolDb } from "../src/index.js";
import { FAST, waitUntil } from "./helpers/nodes.js";

function fakeSession(proven = false, isServer = true, send?: (m: { type: string }) => boolean): PeerSession {
  return { proven, isServer, connection: { closed: false }, send } as unknown as PeerSession;
}

/** A LegacyReasks on a manual clock whose pings are written at once, logging pings and sends in order. */
function rig() {
  const clock = new ManualClock(1000);
  const log: string[] = [];
  const reasks = new LegacyReasks({
    now: () => clock.now(),
    clock,
    ping: () => {
      log.push("ping");
      return Promise.resolve(true);
    },
  });
  const ask = (session: PeerSession, key: string | undefined) => reasks.ask(session, key, () => log.push(`get ${key ?? "*"}`));
  /** Lets the timers due by now and the pings' promises run. */
  const settle = async (ms = 0) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { reasks, log, ask, settle };
}

describe("legacy re-asks", { timeout: 10_000 }, () => {
  it("asks at once for a key the peer never sent; pings first for one it sent, once for a burst", async () => {
    const { reasks, log, ask, settle } = rig();
    const peer = fakeSession();
    ask(peer, "a");
    assert.deepEqual(log, ["get a"]);
    reasks.received(peer, { k: "a" });
    reasks.received(peer, { k: "b" });
    ask(peer, "c");
    ask(peer, "a");
    ask(peer, "b");
    assert.deepEqual(log, ["get a", "get c"], "a and b wait for the ping");
    await settle();
    assert.deepEqual(log, ["get a", "get c", "ping", "get a", "get b"]);
    ask(peer, "a");
    assert.equal(log.at(-1), "get a", "the ping cleared the peer's list: asked at once");
    assert.equal(reasks.pings, 1);
  });

  it("at most one ping a link every PING_INTERVAL_MS; an ask that needs one sooner waits for the slot", async () => {
    const { reasks, log, ask, settle } = rig();
    const peer = fakeSession();
    reasks.received(peer, { k: "a" });
    ask(peer, "a");
    await settle();
    assert.deepEqual(log, ["ping", "get a"]);
    reasks.received(peer, { k: "a" }); // the answer
    ask(peer, "a");
    await settle(PING_INTERVAL_MS - 1);
    assert.deepEqual(log, ["ping", "get a"], "no second ping within the interval");
    ask(peer, "a"); // joins the wait
    await settle(1);
    assert.deepEqual(log, ["ping", "get a", "ping", "get a", "get a"]);
    assert.equal(reasks.pings, 2);
  });

  it("a catch-up's key list (any key) pings only when the peer sent something since the last ping", async () => {
    const { reasks, log, ask, settle } = rig();
    const peer = fakeSession();
    ask(peer, undefined);
    reasks.received(peer, { k: "x" });
    ask(peer, undefined);
    await settle();
    assert.deepEqual(log, ["get *", "ping", "get *"]);
  });

  it("past 16 KiB of keys remembered on a link, every key counts as sent: one ping, still", async () => {
    const { reasks, log, ask, settle } = rig();
    const peer = fakeSession();
    for (let i = 0; i < 20; i++) reasks.received(peer, { k: `${i}-${"x".repeat(1000)}` });
    ask(peer, "never-sent");
    await settle();
    assert.deepEqual(log, ["ping", "get never-sent"]);
    ask(peer, "never-sent");
    assert.equal(log.at(-1), "get never-sent", "the ping cleared the overflow");
    assert.equal(reasks.pings, 1);
  });

  it("never pings a proven (tooldb-dht) peer; drops the waiting asks on close", async () => {
    const { reasks, log, ask, settle } = rig();
    const proven = fakeSession(true);
    reasks.received(proven, { k: "a" });
    ask(proven, "a");
    const legacy = fakeSession();
    reasks.received(legacy, { k: "a" });
    ask(legacy, "a");
    reasks.close();
    await settle(PING_INTERVAL_MS);
    assert.deepEqual(log, ["get a"]);
    assert.equal(reasks.pings, 0);
  });

  it("an unproven client too (a server asks its clients for keys it lacks), remembering 1 KiB of keys", async () => {
    const { reasks, log, ask, settle } = rig();
    const client = fakeSession(false, false);
    reasks.received(client, { k: "b" });
    ask(client, "b");
    ask(client, "never-sent");
    await settle();
    assert.deepEqual(log, ["get never-sent", "ping", "get b"]);
    reasks.received(client, { k: "x".repeat(1025) });
    ask(client, "never-sent");
    await settle(PING_INTERVAL_MS);
    assert.deepEqual(log.slice(3), ["ping", "get never-sent"], "past 1 KiB every key counts as sent");
  });

  it("a node's next ping slot is monotonic: a wall-clock step back of an hour does not hold the ask an hour", async () => {
    // Before, ToolDb gave its re-asks the wall clock (`now()`): the slot `pingedAt + 250 - now()` came an hour late.
    const clock = new ManualClock(Date.now());
    const db = new ToolDb({ topic: "reasks-steps", ...FAST, clock, storageName: `reasks-${Math.random()}` });
    try {
      await db.ready;
      const log: string[] = [];
      const peer = fakeSession(false, true, (m) => (log.push(m.type), true));
      db.reasks.received(peer, { k: "a" });
      db.reasks.ask(peer, "a", () => log.push("get a"));
      clock.advance(0);
      await waitUntil(() => log.includes("get a"), 5000, "the first ping and get");
      db.reasks.received(peer, { k: "a" }); // the answer
      clock.stepWall(-3_600_000);
      db.reasks.ask(peer, "a", () => log.push("get a again"));
      clock.advance(PING_INTERVAL_MS);
      await waitUntil(() => log.includes("get a again"), 5000, "the second ping and get, one slot after the first");
      assert.deepEqual(log, ["ping", "get a", "ping", "get a again"]);
    } finally {
      await db.close();
    }
  });
});
