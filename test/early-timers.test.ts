/**
 * A server a client dropped as unresponsive is dialed again when its wait
 * ends, even when the timer for that fires a millisecond early. Node's
 * timers count whole milliseconds of libuv's monotonic clock, and Date.now()
 * can still read one ms short of the deadline `now() + wait` when the timer
 * fires. ServerSelection set one timer per drop for the wait's length; when
 * it fired early the server was not due yet, and no timer was set again: the
 * server waited for the selection's next refresh (30 s by default, 60 s in
 * unresponsive-recovery, whose `selection` case failed 3 runs in 12 of the
 * whole file, two at once: "timed out waiting for the flaky server linked
 * again after its penalty"). The client's clock plays
 * Node's two clocks (ManualClock's `wallLead`), so the early timer comes
 * every run. Real sockets on loopback. The drop is the server watch's own
 * close (code 4012); DhtPeering and the dialer (`peers`) are checked too.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { ServerSelection } from "../src/peering/server-selection.js";
import { DhtPeering, type PeerSource } from "../src/peering/dht-peering.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "early-timers";
const PENALTY_MS = 1000;
const FLAKY = "127.0.0.10";

describe("a timer that fires a millisecond early still redials a dropped server when its wait ends", () => {
  const { nodes, stops, closers } = teardownEach();

  for (const picker of ["selection", "dht", "peers"] as const) {
    it(`${picker}: dialed again ${PENALTY_MS} ms after the drop, not before`, { timeout: 30_000 }, async () => {
      const honest = new ToolDb({ server: true, host: "127.0.0.3", port: 0, topic: TOPIC, ...FAST });
      nodes.push(honest);
      await honest.ready;
      const f = await HostileServer.start(TOPIC, FLAKY);
      closers.push(f);
      // Started with a fraction of .7 and read .5 ms ahead: every deadline `now() + ms` set before the clock moves is
      // 1 ms past the time its timer fires. The clock moves only below, so no timer fires while the links are made.
      const clock = new ManualClock(Date.now() + 0.7, 0.5);
      const servers = [{ host: FLAKY, port: f.port }, { host: "127.0.0.3", port: portOf(honest) }];
      const peers = picker === "peers" ? servers : [];
      const db = new ToolDb({ topic: TOPIC, ...FAST, clock, storageName: `early-${Math.random()}`, serverProbeInterval: 0, unresponsivePenalty: PENALTY_MS, peers });
      nodes.push(db);
      await db.ready;
      if (picker === "selection") {
        const sel = new ServerSelection(db, { links: 2, cache: false, refreshInterval: 60_000 });
        stops.push(() => sel.close());
        await sel.ready;
        for (const s of servers) sel.addServer(`ws://${s.host}:${s.port}`);
      } else if (picker === "dht") {
        const source: PeerSource = { on: () => undefined, off: () => undefined, peers: () => servers, refresh: () => false, forget: () => false };
        const peering = new DhtPeering(db, source, TOPIC, { maxConnections: 2, dialRetries: 3, penaltyMs: PENALTY_MS, random: () => 0 });
        stops.push(() => peering.stop());
      }
      await waitUntil(() => f.links.size === 1 && db.network.peers.length === 2, 5000, "both servers linked");

      // Dropped as the server watch drops it.
      db.network.peers.find((p) => p.host === FLAKY)!.connection.close(CloseCode.UNRESPONSIVE, "unresponsive (test)");
      await waitUntil(() => f.links.size === 0, 5000, "the dropped link closed at the flaky server");
      const dialed = () => db.network.dialTargets().some((t) => t.host === FLAKY && t.state === "connecting");
      assert.equal(dialed(), false, "not dialed at once");
      clock.advance(PENALTY_MS - 2);
      assert.equal(dialed(), false, "not dialed before its wait ends");
      clock.advance(3);
      assert.equal(dialed(), true, "dialed once its wait ended");
      await waitUntil(() => f.links.size === 1, 5000, "the flaky server linked again");
    });
  }
});
