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
 *
 * And a wall-clock step between the drop and the redial (NTP, a VM resumed,
 * `date -s`) moves neither: the pickers took the wait's end from `now()`
 * (Date.now()) while their timers run on the monotonic clock, so a step back
 * of an hour held the server off an hour longer (the timer fired on time,
 * found it not due, and waited again), and a step forward let the next
 * look at the candidates (a refresh, the DHT reporting the address again)
 * dial it before its wait ended. Due-times are now monotonic
 * (`Clock.monotonic`; ManualClock's `stepWall` moves `now()` alone).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { ServerSelection } from "../src/peering/server-selection.js";
import { DhtPeering, type PeerSource } from "../src/peering/dht-peering.js";
import type { PeerAddress } from "../src/discovery/peer-table.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { teardownEach, type Teardown } from "./helpers/teardown.js";

const TOPIC = "early-timers";
const PENALTY_MS = 1000;
const FLAKY = "127.0.0.10";
const HOUR = 3_600_000;

type Picker = "selection" | "dht" | "peers";

/**
 * A client on `clock` linked to a flaky server and an honest one through
 * `picker`, the flaky link just dropped as unresponsive. `nudge` makes the
 * picker look at its candidates again (a refresh; the DHT reporting the
 * flaky address again), `dialed` whether the flaky server is being dialed.
 */
async function droppedFlaky(t: Teardown, picker: Picker, clock: ManualClock): Promise<{ f: HostileServer; nudge: () => void; dialed: () => boolean }> {
  const honest = new ToolDb({ server: true, host: "127.0.0.3", port: 0, topic: TOPIC, ...FAST });
  t.nodes.push(honest);
  await honest.ready;
  const f = await HostileServer.start(TOPIC, FLAKY);
  t.closers.push(f);
  const servers = [{ host: FLAKY, port: f.port }, { host: "127.0.0.3", port: portOf(honest) }];
  const peers = picker === "peers" ? servers : [];
  const db = new ToolDb({ topic: TOPIC, ...FAST, clock, storageName: `early-${Math.random()}`, serverProbeInterval: 0, unresponsivePenalty: PENALTY_MS, peers });
  t.nodes.push(db);
  await db.ready;
  let nudge = () => undefined as void;
  if (picker === "selection") {
    const sel = new ServerSelection(db, { links: 2, cache: false, refreshInterval: 60_000 });
    t.stops.push(() => sel.close());
    await sel.ready;
    for (const s of servers) sel.addServer(`ws://${s.host}:${s.port}`);
    nudge = () => sel.addServer(`ws://${FLAKY}:${f.port}`); // known already: only a fill, as a refresh does
  } else if (picker === "dht") {
    let found: ((id: unknown, peer: PeerAddress, source: unknown) => void) | undefined;
    const source: PeerSource = { on: (_e, fn) => void (found = fn as typeof found), off: () => undefined, peers: () => servers, refresh: () => false, forget: () => false };
    const peering = new DhtPeering(db, source, TOPIC, { maxConnections: 2, dialRetries: 3, penaltyMs: PENALTY_MS, random: () => 0 });
    t.stops.push(() => peering.stop());
    nudge = () => found?.("flaky", servers[0]!, "dht");
  }
  await waitUntil(() => f.links.size === 1 && db.network.peers.length === 2, 5000, "both servers linked");

  // Dropped as the server watch drops it.
  db.network.peers.find((p) => p.host === FLAKY)!.connection.close(CloseCode.UNRESPONSIVE, "unresponsive (test)");
  await waitUntil(() => f.links.size === 0, 5000, "the dropped link closed at the flaky server");
  const dialed = () => db.network.dialTargets().some((t) => t.host === FLAKY && t.state === "connecting");
  assert.equal(dialed(), false, "not dialed at once");
  return { f, nudge, dialed };
}

/**
 * Moves `clock` to a ms short of the wait's end (nudging the picker there), then past it: dialed then, not before;
 * `linked`: and linked again (not after a wall-clock step: the client reads the servers' signed records as an hour
 * stale or ahead, and refuses the handshake, as it should).
 */
async function redialedOnTime(clock: ManualClock, { f, nudge, dialed }: Awaited<ReturnType<typeof droppedFlaky>>, linked = true): Promise<void> {
  clock.advance(PENALTY_MS - 2);
  nudge();
  assert.equal(dialed(), false, "not dialed before its wait ends");
  clock.advance(3);
  assert.equal(dialed(), true, "dialed once its wait ended");
  if (linked) await waitUntil(() => f.links.size === 1, 5000, "the flaky server linked again");
}

describe("a timer that fires a millisecond early still redials a dropped server when its wait ends", () => {
  const t = teardownEach();

  for (const picker of ["selection", "dht", "peers"] as const) {
    it(`${picker}: dialed again ${PENALTY_MS} ms after the drop, not before`, { timeout: 30_000 }, async () => {
      // Started with a fraction of .7 and read .5 ms ahead: every deadline `now() + ms` set before the clock moves is
      // 1 ms past the time its timer fires. The clock moves only below, so no timer fires while the links are made.
      const clock = new ManualClock(Date.now() + 0.7, 0.5);
      await redialedOnTime(clock, await droppedFlaky(t, picker, clock));
    });
  }
});

describe("a wall-clock step between a drop and the redial moves the redial neither way", () => {
  const t = teardownEach();

  for (const picker of ["selection", "dht", "peers"] as const) {
    for (const step of [-HOUR, HOUR]) {
      it(`${picker}: the wall clock stepped ${step < 0 ? "back" : "forward"} an hour, dialed again ${PENALTY_MS} ms after the drop`, { timeout: 30_000 }, async () => {
        const clock = new ManualClock(Date.now());
        const dropped = await droppedFlaky(t, picker, clock);
        clock.stepWall(step);
        await redialedOnTime(clock, dropped, false);
      });
    }
  }
});
