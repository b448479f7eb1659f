/**
 * A client takes in its links' frames fairly (outside check D6). A hostile
 * server, one of two a client links to, pushed 30,000 valid signed updates
 * of a key the client subscribed to: every one of them is "asked for"
 * (unsolicited-budget.ts takes subscribed keys always), and the client took
 * each link's frames in arrival order, so an honest server's update of the
 * same key reached the client 8 s late (10,000 updates: 1.8-4.5 s), and the
 * flood's pending checks piled up in the client's memory. Now a client's
 * links go through the fair intake (network/fair-intake.ts) with client
 * limits (network/client-intake.ts): a link's work in flight is capped, its
 * waiting frames are bounded, and waiting links are served in turn.
 * (The intake is read with `?.`: on main a client had none, and this test
 * runs against main's build to show it fails there.)
 */
import assert from "node:assert/strict";
import { after, afterEach, describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import { TimerGroup } from "../src/base/clock.js";
import { randomId } from "../src/base/random.js";
import { CLIENT_INTAKE_LIMITS } from "../src/network/client-intake.js";
import { FairIntake, type IntakeSink } from "../src/network/fair-intake.js";
import { signRecord } from "../src/node/record-signer.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { FAST, closeAll, portOf, waitUntil } from "./helpers/nodes.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { testAuthor } from "./helpers/signed-records.js";
import { ManualClock } from "./helpers/manual-clock.js";

const TOPIC = "client-intake";
const T = 120_000;
/** Valid updates of the subscribed key the hostile server pushes in one burst. */
const FLOOD = 20_000;
/** How late the honest update may reach the client while the flood is taken in (main: several seconds). */
const HONEST_BOUND_MS = 1000;

/** `count` valid updates of `key`, each newer than the last, all older than `newest`. */
async function updates(key: string, count: number, newest: number): Promise<ToolDbRecord[]> {
  const author = await testAuthor();
  const out: ToolDbRecord[] = new Array(count);
  for (let i = 0; i < count; i += 1024) {
    const n = Math.min(1024, count - i);
    const batch = await Promise.all(Array.from({ length: n }, (_, j) => signRecord(author, key, { i: i + j, pad: "y".repeat(200) }, newest - count + i + j, 0, false)));
    batch.forEach((r, j) => (out[i + j] = r));
  }
  return out;
}

describe("the client intake's bound (manual clock)", () => {
  it("a link's waiting frames are bounded by count and by length; one frame always fits; no message rate", { timeout: 5000 }, () => {
    const clock = new ManualClock();
    // Each link's own bound: the bound across links (test/client-intake-total.test.ts) is lifted here.
    const perLink = { ...CLIENT_INTAKE_LIMITS, maxTotalQueuedMessages: Infinity, maxTotalQueuedBytes: Infinity };
    const intake = new FairIntake(perLink, new TimerGroup(clock), () => clock.now());
    let dispatched = 0;
    let overflows = 0;
    const sink: IntakeSink = { dispatch: () => void dispatched++, pause: () => undefined, resume: () => undefined, overflow: () => void overflows++, held: () => false };
    const held: IntakeSink = { ...sink, dispatch: () => ({ done: new Promise(() => undefined), weight: CLIENT_INTAKE_LIMITS.maxOutstandingPerPeer }) };
    // No rate: a link's frames are handled as fast as they come while it is under its cap.
    const free = intake.open(sink);
    for (let i = 0; i < 100_000; i++) free.push("x");
    assert.equal(dispatched, 100_000);
    // A link at its cap: its frames wait, up to the count bound...
    const busy = intake.open(held);
    busy.push("first");
    for (let i = 0; i < CLIENT_INTAKE_LIMITS.maxQueuedMessages + 10; i++) busy.push("y");
    assert.equal(busy.queue.length, CLIENT_INTAKE_LIMITS.maxQueuedMessages);
    assert.equal(overflows, 10);
    // ... and the length bound; a frame over the whole bound still fits an empty queue.
    const big = intake.open(held);
    big.push("first");
    const mib = "z".repeat(2 ** 20);
    big.push(mib.repeat(40));
    assert.equal(big.queue.length, 1, "one frame always fits");
    big.push("a");
    assert.equal(overflows, 11);
    const large = intake.open(held);
    large.push("first");
    for (let i = 0; i < 40; i++) large.push(mib);
    assert.equal(large.queuedBytes, CLIENT_INTAKE_LIMITS.maxQueuedBytes, "32 frames of 1 MiB");
    assert.equal(overflows, 19);
    assert.equal(intake.queuedBytes, big.queuedBytes + large.queuedBytes + CLIENT_INTAKE_LIMITS.maxQueuedMessages);
    intake.close();
  });
});

describe("a client under a flood of a subscribed key from one of its servers", () => {
  const nodes: ToolDb[] = [];
  const hostiles: HostileServer[] = [];
  afterEach(async () => {
    await closeAll(...nodes.splice(0));
    await Promise.all(hostiles.splice(0).map((h) => h.close()));
  });
  after(() => closeAll(...nodes));

  it(`takes an honest server's update within ${HONEST_BOUND_MS} ms while ${FLOOD.toLocaleString("en")} valid updates flood in; the newest record stays; the flood waits at its sender`, { timeout: T }, async () => {
    const honest = new ToolDb({ server: true, host: "127.0.0.3", port: 0, topic: TOPIC, ...FAST });
    await honest.ready;
    nodes.push(honest);
    const hostile = await HostileServer.start(TOPIC, "127.0.0.10");
    hostiles.push(hostile);
    const subscribedAtHostile = new Set<string>();
    hostile.onFrame = (_link, f) => {
      if (f.type === "subscribe" && typeof f.key === "string") subscribedAtHostile.add(f.key);
    };
    const client = new ToolDb({ topic: TOPIC, ...FAST, storageName: `client-intake-${randomId()}`, peers: [{ host: hostile.host, port: hostile.port }, { host: "127.0.0.3", port: portOf(honest) }] });
    await client.ready;
    nodes.push(client);
    const writer = new ToolDb({ topic: TOPIC, ...FAST, storageName: `client-intake-w-${randomId()}`, peers: [{ host: "127.0.0.3", port: portOf(honest) }] });
    await writer.ready;
    nodes.push(writer);
    await waitUntil(() => client.network.peers.length === 2 && writer.network.peers.length === 1, 10_000, "the client links both servers");

    let feedEvents = 0;
    let honestAt = 0;
    /** What the hostile server still held of its flood when the honest update reached the client. */
    let heldAtHonest = 0;
    client.addKeyListener("feed", (r) => {
      feedEvents++;
      if (r.v !== "honest" || honestAt !== 0) return;
      honestAt = Date.now();
      heldAtHonest = [...hostile.links][0]?.ws.bufferedAmount ?? 0;
    });
    await client.subscribeData("feed");
    const clientId = client.network.getClientAddress().slice(-20);
    await waitUntil(() => subscribedAtHostile.has("feed") && (honest.remoteSubscriptions.subscribers("feed")?.has(clientId) ?? false), 10_000, "both servers hold the subscription");

    const flood = await updates("feed", FLOOD, Date.now() - 60_000);
    const heap0 = process.memoryUsage().heapUsed;
    let maxQueued = 0;
    let maxInFlight = 0;
    const [link] = [...hostile.links];
    const sampler = setInterval(() => {
      const intake = client.network.guard.intake;
      maxQueued = Math.max(maxQueued, intake?.queuedFrames ?? 0);
      maxInFlight = Math.max(maxInFlight, intake?.inFlight ?? 0);
    }, 10);
    try {
      const t0 = Date.now();
      for (const r of flood) link!.send({ type: "put", id: randomId(), to: [], data: r });
      // The flood is under way: the client has taken in some of it.
      await waitUntil(() => feedEvents >= 200, T, "the client taking in the flood");
      const sent = Date.now();
      await writer.putData("feed", "honest");
      await waitUntil(() => honestAt > 0, T, "the honest update at the client");
      const honestMs = honestAt - sent;
      const floodHeld = feedEvents;
      // The rest of the flood loses to the honest update (older); the client ends with the honest record.
      await waitUntil(async () => link!.ws.bufferedAmount === 0 && (client.network.guard.intake?.queuedFrames ?? 0) === 0, T, "the flood taken in");
      const floodMs = Date.now() - t0;
      const heapMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
      console.log(`honest update ${honestMs} ms after it was written (flood events before it: ${floodHeld}); flood of ${FLOOD} taken in ${floodMs} ms; client intake at most ${maxQueued} frames waiting, ${maxInFlight} in flight; the sender still held ${(heldAtHonest / 2 ** 20).toFixed(1)} MiB of it then; heap +${heapMb.toFixed(0)} MiB (all three nodes)`);
      assert.ok(honestMs < HONEST_BOUND_MS, `the honest update took ${honestMs} ms (bound ${HONEST_BOUND_MS} ms)`);
      assert.equal((await client.records.get("feed"))?.v, "honest", "the newest record stays");
      assert.equal(await client.getData("feed", false, 2000), "honest");
      assert.equal(client.network.peers.length, 2, "both links stay: the flood was taken in, only slower");
      // Memory: the flood waited at its sender (the client paused reading), not in the client.
      assert.ok(maxQueued <= 1024, `at most about a socket read of frames waiting (${maxQueued})`);
      assert.ok(maxInFlight <= 32 * 8 + 1, `in flight: the link's cap of 256 small puts, and the honest one (${maxInFlight})`);
      assert.ok(heldAtHonest > 1024 * 1024, `the sender still held its flood (${heldAtHonest} bytes): the client read it only as it took it in`);
    } finally {
      clearInterval(sampler);
    }
  });
});
