/**
 * Servers converge without help from clients: a link between two servers
 * that was black-holed and came back without closing is reconciled at once
 * (the heartbeat heard the peer again after a silence), with no client and
 * no new link involved.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import { closeAll, portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { seed, signedRecords } from "./helpers/signed-records.js";
import { BlackholeProxy } from "../faults/proxy.js";

describe("server resync", () => {
  const nodes: ToolDb[] = [];
  const proxies: BlackholeProxy[] = [];
  after(async () => {
    await closeAll(...nodes);
    await Promise.all(proxies.map((p) => p.close()));
  });

  it("reconciles two servers right after a black-holed link between them heals without closing", { timeout: 30_000 }, async () => {
    // Both servers on one manual clock: the heartbeat visits only when the test moves it.
    const clock = new ManualClock(Date.now());
    const interval = 1000;
    const a = await startServer({ clock, heartbeatInterval: interval });
    const b = await startServer({ clock, heartbeatInterval: interval });
    nodes.push(a, b);
    const proxy = new BlackholeProxy(portOf(a));
    proxies.push(proxy);
    b.network.connectTo("127.0.0.1", await proxy.listen());
    await waitUntil(() => a.network.peers.length === 1 && b.network.peers.length === 1, 5000, "the link through the proxy");
    await waitUntil(() => b.syncProgress.completed >= 1 && b.syncProgress.running === 0, 5000, "the first reconciliation");

    const restore = proxy.blackhole(0);
    assert.ok(restore);
    // Writes that reached one server while the path was cut (their relay never crossed).
    const t0 = clock.now();
    const onA = await signedRecords(5, "only-on-a-", t0);
    const onB = await signedRecords(5, "only-on-b-", t0);
    await seed(a, onA);
    await seed(b, onB);
    clock.advance(interval); // a heartbeat visit: each side pings into the hole; nothing closes yet
    clock.advance(interval * 0.7); // silent for 1.7 intervals, past the 1.5 a live link allows for
    assert.equal(a.network.peers.length, 1, "the link is still up");
    assert.equal(await b.records.get("only-on-a-0"), undefined);

    restore();
    // The clock stands still from here: no timer, no new link; only the revived link can carry the records.
    const holdsAll = (db: ToolDb) => async () => {
      for (const r of [...onA, ...onB]) if ((await db.records.get(r.k))?.h !== r.h) return false;
      return true;
    };
    await waitUntil(holdsAll(b), 10_000, "A's records on B");
    await waitUntil(holdsAll(a), 10_000, "B's records on A");
    assert.equal(a.network.peers.length, 1, "the same link carried them");
  });
});
