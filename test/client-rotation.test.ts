/**
 * A DHT client's links held by fake servers that behave (found by this
 * stop's check): servers that prove a fresh key each and answer what the
 * client's server watch asks (empty key queries, NOT_FOUND function calls,
 * acknowledged puts they drop) but serve no record. A client kept its
 * `maxConnections` links to the first it reached and dialed nobody else, so
 * a real server found later was never linked and its records never read.
 * The client's links now rotate on merit (src/peering/client-rotation.ts).
 * Real sockets on loopback; the DHT's part, finding addresses, is a stub.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { DhtPeering } from "../src/peering/dht-peering.js";
import { StubSource } from "./helpers/stub-source.js";
import { ErrorCode } from "../src/base/errors.js";
import { DHTClient } from "../src/entries/discovery.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import net from "node:net";
import { HostileServer, behavingFake } from "./helpers/hostile-server.js";
import { type Clock, TimerGroup, systemClock } from "../src/base/clock.js";
import { ClientRotation } from "../src/peering/client-rotation.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { CandidatePool } from "../src/peering/candidate-pool.js";
import { PROBATION_TICKS } from "../src/network/slot-rotation.js";
import { createLogger } from "../src/base/logger.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "client-rotation";
const FAKES = 4;
const ROTATE_MS = 150;

describe("a DHT client's links held by fake servers that behave", () => {
  const { nodes, stops, closers } = teardownEach();

  const fake = () => behavingFake(TOPIC, closers);

  /** A real server (127.0.1.1) and a client with no peering yet (`opts` may depend on the server). */
  async function serverAndClient(opts: Partial<ToolDbOptions> | ((honest: ToolDb) => Partial<ToolDbOptions>) = {}) {
    const honest = new ToolDb({ server: true, host: "127.0.1.1", port: 0, topic: TOPIC, ...FAST });
    nodes.push(honest);
    await honest.ready;
    const client = new ToolDb({ topic: TOPIC, ...FAST, ...(typeof opts === "function" ? opts(honest) : opts), storageName: `client-rotation-${Math.random()}` });
    nodes.push(client);
    await client.ready;
    const linked = () => client.network.peers.some((p) => p.address === honest.peerAccount.getAddress());
    return { honest, client, linked };
  }

  /** A real server holding "held" (not found yet), and a client whose peering found only `fakes` and has linked two. */
  async function rig(fakes: HostileServer[]) {
    const { honest, client, linked } = await serverAndClient();
    await honest.putData("held", "by the real server");
    const source = new StubSource(fakes.map((f) => ({ host: f.host, port: f.port })));
    const peering = new DhtPeering(client, source, TOPIC, { maxConnections: 2, dialRetries: 3, penaltyMs: 5000, random: () => 0, rotateIntervalMs: ROTATE_MS, meritWindowMs: 60_000 });
    stops.push(() => peering.stop());
    await waitUntil(() => fakes.filter((f) => f.links.size > 0).length === 2, 5000, "the client to link two fakes");
    return { honest, client, source, peering, linked };
  }

  it("rotate until the client links the real server found later and reads its record; the real server keeps its link", { timeout: 60_000 }, async () => {
    const { honest, client, source, peering, linked } = await rig(await Promise.all(Array.from({ length: FAKES }, () => fake())));
    let fakeDrops = 0;
    let mostLinks = 0;
    client.on("peer-disconnect", (info) => {
      if (info.host === "127.0.0.10") fakeDrops++;
    });
    client.on("peer-connect", () => (mostLinks = Math.max(mostLinks, client.network.peers.length)));
    // Subscribed while only fakes were linked: the subscription goes to every link the rotation brings in.
    await client.subscribeData("news");

    source.announce({ host: "127.0.1.1", port: portOf(honest) });
    // The client reads as an app does: a real server's answer is what earns a link its keep.
    let value: unknown = null;
    await waitUntil(async () => linked() && (value = await client.getData("held", false, 500)) !== null, 30_000, "the client to link the real server and read its record");
    assert.equal(value, "by the real server");
    const before = fakeDrops;
    await waitUntil(() => fakeDrops >= before + 3, 15_000, "three more rotations among the fakes");
    assert.ok(linked(), "the real server's link was rotated out although it served the client's read");
    await honest.putData("news", "pushed");
    await waitUntil(async () => ((await client.records.get("news")) as { v?: unknown } | undefined)?.v === "pushed", 5000, "the real server to push a subscribed key");
    assert.ok(mostLinks <= 3, `the client held ${mostLinks} links at once`);
    const rested = peering.candidates().filter((c) => c.host === "127.0.0.10" && c.restUntil > client.monotonic());
    assert.ok(rested.length >= 1, "rotated-out fakes rest before they are dialed again");
  });

  it("fakes that echo the client's own records back earn no keep: the real server found later is still linked and read", { timeout: 60_000 }, async () => {
    // Each fake keeps what the client puts and answers a get of it with that very record: a record the
    // client held already, which any peer can have (the client's own writes go to every server it links).
    const fakes = await Promise.all(
      Array.from({ length: FAKES }, async () => {
        const f = await fake();
        const kept = new Map<string, unknown>();
        const acks = f.onFrame;
        f.onFrame = (link, frame) => {
          acks(link, frame);
          const data = frame.data as { k?: string } | undefined;
          if (frame.type === "put" && typeof data?.k === "string") kept.set(data.k, data);
          if (frame.type === "get" && kept.has(frame.key as string)) link.send({ type: "put", id: frame.id, to: [], data: kept.get(frame.key as string) });
        };
        return f;
      }),
    );
    const { honest, client, source, linked } = await rig(fakes);
    await client.putData("mine", "the client's own");
    source.announce({ host: "127.0.1.1", port: portOf(honest) });
    let value: unknown = null;
    // The app reads its own key back, and a key only the real server holds.
    await waitUntil(
      async () => {
        await client.getData("mine", false, 200);
        return linked() && (value = await client.getData("held", false, 500)) !== null;
      },
      20_000,
      "the client to link the real server and read its record",
    );
    assert.equal(value, "by the real server");
  });

  for (const how of ["bootstrap-list", "db.peers"]) {
  it(`a server the operator listed (${how}) keeps a write-only client's link when fakes are found: its writes reach it`, { timeout: 60_000 }, async () => {
    const { honest, client, linked } = await serverAndClient((h) => (how === "db.peers" ? { peers: [{ host: "127.0.1.1", port: portOf(h) }] } : {}));
    const source = new StubSource([]);
    const peering = new DhtPeering(client, source, TOPIC, { maxConnections: 1, dialRetries: 3, penaltyMs: 5000, random: () => 0, rotateIntervalMs: ROTATE_MS, meritWindowMs: 60_000 });
    stops.push(() => peering.stop());
    if (how === "bootstrap-list") source.announce({ host: "127.0.1.1", port: portOf(honest) }, "bootstrap-list");
    await waitUntil(linked, 5000, "the client to link the listed server");
    let drops = 0;
    client.on("peer-disconnect", (info) => {
      if (info.host === "127.0.1.1") drops++;
    });
    // Behaving fakes announce the topic; the client only writes (no read earns any link its keep).
    for (const f of await Promise.all(Array.from({ length: FAKES }, () => fake()))) source.announce({ host: f.host, port: f.port });
    const ticks = () => (peering as unknown as { clientRotation: { slots: { tick: number } } }).clientRotation.slots.tick;
    const start = ticks();
    let writes = 0;
    while (ticks() < start + 8) {
      const tick = ticks();
      await client.putData(`w${writes++}`, writes);
      await waitUntil(() => ticks() > tick, 5000, "a rotation");
    }
    assert.equal(drops, 0, "the listed server's link was rotated out for fakes");
    await waitUntil(async () => (await honest.getData(`w${writes - 1}`, false, 100)) !== null, 5000, "the last write to reach the listed server");
    const listed = peering.candidates().find((c) => c.host === "127.0.1.1");
    assert.equal(listed?.tier, 0, "the listed server was demoted to a stranger");
  });
  }

  it("make before break: a client with one good link and a dead candidate never drops to zero links, and dials the candidate a bounded number of times", { timeout: 60_000 }, async () => {
    const { honest, client, linked } = await serverAndClient();
    const source = new StubSource([{ host: "127.0.1.1", port: portOf(honest) }]);
    // Fast rotations, a short first penalty and first-contact bound: the dead candidate's backoff ends many times.
    const interval = 50;
    const peering = new DhtPeering(client, source, TOPIC, { maxConnections: 1, dialRetries: 3, penaltyMs: 200, random: () => 0, rotateIntervalMs: interval, firstContactTimeoutMs: 300 });
    stops.push(() => peering.stop());
    await waitUntil(linked, 5000, "the client to link the server");
    // A client that watches a key (links are judged only once asked for a record), which nobody writes: no merit.
    await client.subscribeData("quiet");
    let drops = 0;
    let emptied = 0;
    client.on("peer-disconnect", (info) => {
      if (info.host === "127.0.1.1") drops++;
      if (client.network.peers.length === 0) emptied++;
    });
    // A dead candidate: announced, takes the TCP connection, never answers (a server gone under a stale announce).
    const held = new Set<net.Socket>();
    const hole = net.createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => hole.listen(0, "127.0.0.10", resolve));
    closers.push({ close: () => new Promise((resolve) => (hole.close(resolve), held.forEach((socket) => socket.destroy()))) });
    source.announce({ host: "127.0.0.10", port: (hole.address() as net.AddressInfo).port });
    const ticks = () => (peering as unknown as { clientRotation: { slots: { tick: number } } }).clientRotation.slots.tick;
    const start = ticks();
    // Dialed again after its first penalty ended: the rotation kept trying, with the server's link up throughout.
    await waitUntil(() => held.size >= 2, 10_000, "the dead candidate to be dialed twice");
    await waitUntil(() => ticks() >= start + 60, 10_000, "60 rotations");
    const elapsed = (ticks() - start) * interval;
    assert.equal(drops, 0, "the good link was rotated out for a candidate that never answered");
    assert.equal(emptied, 0);
    assert.ok(linked());
    // Its penalty doubles from 200 ms after each failed first contact (300 ms growing): a few dials in 60 rotations, not one a rotation.
    assert.ok(held.size <= 6, `${held.size} dials to the dead candidate in ${elapsed} ms`);
  });

  it("a rotation of the longest interval allowed sets no timer past Node's range (one past it fires at once, over and over)", { timeout: 30_000 }, async () => {
    let tooLong = 0;
    const clock: Clock = { ...systemClock, setTimeout: (fn, ms) => ((tooLong += ms > 2 ** 31 - 1 ? 1 : 0), systemClock.setTimeout(fn, ms)) };
    const { honest, client, linked } = await serverAndClient({ clock });
    const source = new StubSource([{ host: "127.0.1.1", port: portOf(honest) }]);
    const peering = new DhtPeering(client, source, TOPIC, { maxConnections: 1, dialRetries: 3, penaltyMs: 5000, random: () => 0, rotateIntervalMs: 2 ** 31 - 1 });
    stops.push(() => peering.stop());
    await waitUntil(linked, 5000, "the client to link the server");
    await client.subscribeData("quiet"); // judged only once asked for a record
    // Another candidate that takes a dial and never answers: it holds the dial for the handshake timeout.
    const held = new Set<net.Socket>();
    const hole = net.createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => hole.listen(0, "127.0.0.10", resolve));
    closers.push({ close: () => new Promise((resolve) => (hole.close(resolve), held.forEach((socket) => socket.destroy()))) });
    const dialsToHole = () => held.size;
    source.announce({ host: "127.0.0.10", port: (hole.address() as net.AddressInfo).port });
    // Two intervals are not waited out: the rotation's own ticks, driven by hand, dial the other candidate for the idle server's slot.
    const rotation = (peering as unknown as { clientRotation: { tick(): void } }).clientRotation;
    for (let i = 0; i < 3; i++) rotation.tick();
    await waitUntil(() => dialsToHole() === 1, 5000, "the other candidate dialed for the idle server's slot");
    assert.ok(linked(), "the server's link is closed only once its replacement is linked");
    // The dial fails (its penalty set): no wait of the peering may pass a timer's range.
    await waitUntil(() => peering.candidates().some((c) => c.host === "127.0.0.10" && c.until > client.monotonic()), 10_000, "the dial to fail");
    assert.ok(linked());
    assert.equal(tooLong, 0, `${tooLong} timers set past 2^31-1 ms`);
  });

  /** A ClientRotation over two fake server links, whose replacement dials the test records (and answers). */
  function fakeRotation() {
    const disconnected: string[] = [];
    const dials: string[] = [];
    let inFlight = false;
    const session = (n: number) => ({ outgoing: true, isServer: true, host: `127.0.0.${n}`, port: 9000, address: `a${n}`, servedAt: 0, answeredAt: 0, askedForRecords: false, connection: { closed: false } });
    const peers = [session(1), session(2)];
    const db = { isClosed: false, now: () => 1000, network: { peers, disconnectFrom: (host: string) => disconnected.push(host) } };
    const pool = new CandidatePool({ capacity: 16, penaltyMs: 1000, maxPenaltyMs: 10_000, random: () => 0, now: () => 1000 });
    const deps = {
      db: db as unknown as ToolDb, pool, timers: new TimerGroup(), maxLinks: 2, intervalMs: 1000, meritWindowMs: 60_000, listed: () => false, log: createLogger("test:client-rotation"),
      dialReplacement: () => (dials.push("127.0.0.9"), (inFlight = true), { host: "127.0.0.9", port: 9000 }),
      dialing: () => inFlight,
    };
    const rotation = new ClientRotation(deps);
    const linkedNew = () => rotation.connected({ ...session(9), askedForRecords: true } as unknown as PeerSession);
    return { rotation, peers, disconnected, dials, linkedNew, settle: () => (inFlight = false) };
  }

  it("a link is judged only once the client asked it for a record: a client that only writes keeps its links", () => {
    const { rotation, peers, disconnected, dials, linkedNew } = fakeRotation();
    for (let i = 0; i < PROBATION_TICKS + 3; i++) rotation.tick();
    assert.deepEqual([disconnected, dials], [[], []], "a link never asked for anything was rotated out");
    peers[1]!.askedForRecords = true;
    rotation.tick();
    assert.deepEqual([disconnected, dials], [[], ["127.0.0.9"]], "a candidate dialed, the link kept until it is up");
    linkedNew();
    assert.deepEqual(disconnected, ["127.0.0.2"]);
  });

  it("make before break: a replacement that fails calls the rotation off; one rotation in flight at a time", () => {
    const { rotation, peers, disconnected, dials, linkedNew, settle } = fakeRotation();
    peers[1]!.askedForRecords = true;
    for (let i = 0; i < PROBATION_TICKS + 1; i++) rotation.tick();
    assert.deepEqual(dials, ["127.0.0.9"]);
    rotation.tick();
    rotation.tick();
    assert.deepEqual(dials, ["127.0.0.9"], "a second dial while the first is in flight");
    settle();
    rotation.dialFailed("127.0.0.9", 9000);
    linkedNew(); // a link to that address later, for another reason: not this rotation's
    assert.deepEqual(disconnected, [], "the link was closed although its replacement failed");
    rotation.tick();
    assert.deepEqual(dials, ["127.0.0.9", "127.0.0.9"], "the next rotation tries again");
  });

  it("DHTClient and DhtPeering refuse bad rotation options with INVALID_ARGUMENT", async () => {
    const client = new ToolDb({ topic: TOPIC, ...FAST, storageName: `client-rotation-${Math.random()}` });
    nodes.push(client);
    await client.ready;
    for (const bad of [{ rotateIntervalMs: -1 }, { rotateIntervalMs: 2 ** 31 }, { meritWindowMs: Number.NaN }, { rotateIntervalMs: "5" as unknown as number }]) {
      const invalid = (err: { code?: string }) => err.code === ErrorCode.INVALID_ARGUMENT;
      assert.throws(() => new DHTClient(TOPIC, { bootstrap: [], ...bad }), invalid, JSON.stringify(bad));
      // DhtPeering is exported too: past a timer's range its rotation ran every 2 ms, with NaN no link kept its slot.
      assert.throws(() => new DhtPeering(client, new StubSource([]), TOPIC, { maxConnections: 2, dialRetries: 3, penaltyMs: 5000, ...bad }), invalid, `DhtPeering ${JSON.stringify(bad)}`);
    }
  });
});
