/**
 * A server that has its mesh links dials again the servers whose links died
 * without a close (src/peering/mesh-rotation.ts), over real sockets: server
 * S1 links to S2 through a proxy that can cut the path (black-holing the
 * link and refusing new connections, as a partition does) and is dialed by
 * S3, so that after the cut it still has its `minLinks` (1) and its pump
 * dials nobody. S2 takes a write during the cut. Without the redial, S1
 * never links to S2 again and never gets the write; with it, both come back
 * within a second of the heal, and S1 closes one other link to keep its
 * mesh's size, as a rotation does.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DHTServer } from "../../src/entries/discovery.js";
import type { ToolDb } from "../../src/index.js";
import { BlackholeProxy } from "../../faults/proxy.js";
import { FAST, closeAll, portOf, startServer, waitUntil } from "../helpers/nodes.js";
import { waitFor } from "../helpers/wait.js";

const TOPIC = "mesh-rotation";
const HEARTBEAT_MS = 300;

interface Setup {
  s1: DHTServer;
  s2: ToolDb;
  s3: ToolDb;
  proxy: BlackholeProxy;
  proxyPort: number;
}

const linked = (a: ToolDb, b: ToolDb) => a.network.peers.some((p) => p.address === b.nodeAddress());

async function setup(redialLostMs: number, cleanup: Array<() => Promise<unknown>>): Promise<Setup> {
  const s2 = await startServer({ topic: TOPIC, heartbeatInterval: HEARTBEAT_MS });
  cleanup.push(() => closeAll(s2));
  const proxy = new BlackholeProxy(portOf(s2));
  const proxyPort = await proxy.listen();
  cleanup.push(() => proxy.close());
  const s1 = new DHTServer(TOPIC, "127.0.0.1", 0, {
    mechanisms: { mainline: false, peerCache: false, peers: [{ host: "127.0.0.1", port: proxyPort }] },
    mesh: { minLinks: 1, maxLinks: 3, exchangeIntervalMs: 0, rotateIntervalMs: 0, redialLostMs },
    dialRetries: 1,
    // Long: the pump must not be what dials S2 again (it dials only while S1 lacks links anyway).
    penaltyMs: 60_000,
    db: { ...FAST, heartbeatInterval: HEARTBEAT_MS },
  });
  cleanup.push(() => s1.stop());
  await s1.start();
  await waitUntil(() => linked(s1.db, s2), 5000, "S1 linked to S2 through the proxy");
  const s3 = await startServer({ topic: TOPIC, heartbeatInterval: HEARTBEAT_MS, peers: [{ host: "127.0.0.1", port: s1.port }] });
  cleanup.push(() => closeAll(s3));
  await waitUntil(() => linked(s1.db, s3) && linked(s1.db, s2), 5000, "S1 linked to S2 and S3");
  return { s1, s2, s3, proxy, proxyPort };
}

/** Cuts the path S1–S2 until S1's heartbeat dropped the link and its dialer gave up, writes on S2, heals; resolves the write's key. */
async function cutWriteHeal({ s1, s2, proxy, proxyPort }: Setup): Promise<string> {
  // The dialer's own retries of the link (dialRetries 1) fail against the refusing proxy, and it gives the address up.
  const gaveUp = waitFor(s1.db.network, "dial-failed", 10_000, (e) => e.final && e.port === proxyPort);
  await proxy.stopListening();
  const restore = proxy.blackhole(0);
  assert.ok(restore, "the link through the proxy was cut");
  await waitUntil(() => !linked(s1.db, s2), 10 * HEARTBEAT_MS, "S1's heartbeat dropped the link to S2");
  await s2.putData("written-during-the-cut", { n: 1 });
  await gaveUp;
  assert.ok(!linked(s1.db, s2), "no link across the cut");
  restore();
  await proxy.listen(proxyPort);
  return "written-during-the-cut";
}

describe("the redial of servers whose links died without a close", { timeout: 60_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  it("without it, a server that still has its links never links back to the server behind the healed cut, nor gets its write", async () => {
    const setupDone = await setup(0, cleanup);
    const key = await cutWriteHeal(setupDone);
    // With it, the link and the write are back within a few hundred ms (the next test): none here in several times that.
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(!linked(setupDone.s1.db, setupDone.s2), "S1 did not link to S2 again");
    assert.equal(await setupDone.s1.db.records.get(key), undefined, "S1 never got the write made behind the cut");
  });

  it("with it, the link and the write come back within seconds of the heal", async () => {
    const setupDone = await setup(200, cleanup);
    const key = await cutWriteHeal(setupDone);
    const healedAt = Date.now();
    await waitUntil(async () => linked(setupDone.s1.db, setupDone.s2) && (await setupDone.s1.db.records.get(key)) !== undefined, 5000, "S1 linked to S2 again and holds its write");
    const ms = Date.now() - healedAt;
    assert.ok((setupDone.s1.peering?.meshRotation?.dials ?? 0) > 0, "the rotation dialed");
    // A lost server's link is one more, not a trade: S3 stays (the mesh's upper bound prunes, as for any link).
    assert.equal(setupDone.s1.peering!.meshRotation!.closed, 0, "no other link closed");
    assert.ok(linked(setupDone.s1.db, setupDone.s3), "S1 kept S3");
    process.stderr.write(`# redial after the heal: linked and synced in ${ms} ms\n`);
  });

  it("a server that drops each link soon after it is made is dialed again less and less often, and costs no other link (found in review)", async () => {
    const { s1, s2, s3, proxy } = await setup(200, cleanup);
    const rotation = s1.peering!.meshRotation!;
    const dialsBefore = rotation.dials;
    // For 8 s every link S1 makes to S2 is cut as soon as it is up: S1's heartbeat drops it each time.
    const until = Date.now() + 8000;
    let cuts = 0;
    let s3Lost = false;
    while (Date.now() < until) {
      if (linked(s1.db, s2) && proxy.blackhole(0)) cuts++;
      if (!linked(s1.db, s3)) s3Lost = true;
      await new Promise((r) => setTimeout(r, 50));
    }
    const redials = rotation.dials - dialsBefore;
    assert.ok(cuts >= 2, `the link was made and cut again (${cuts} cuts)`);
    // Waits 0.2, 0.4, 0.8, 1.6, 3.2 s (±50 %) after each loss, besides the heartbeat's own ~0.6 s: far fewer than one a loss-and-redial cycle.
    assert.ok(redials <= 7, `${redials} redials in 8 s`);
    assert.equal(rotation.closed, 0, "no other link closed for it");
    assert.ok(!s3Lost, "S1 kept S3 throughout");
  });
});
