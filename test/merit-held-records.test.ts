/**
 * Link merit for records a client already holds (src/node/merit-records.ts).
 * A client that re-reads keys whose latest version it holds (an app reading
 * its config, profiles) gave an honest server no merit: only a record the
 * client did not hold when it asked earned any, since any peer can echo one
 * it holds. So once the first read's merit was old, the honest server took
 * its turn with the fakes and was rotated out. A held record now earns merit
 * while the client sent it to no peer since a peer delivered it new; one it
 * handed out (a get or a subscribe of a peer answered, a behind sender
 * answered, its own writes) earns nothing, whichever link echoes it.
 * Real sockets on loopback; the DHT's part, finding addresses, is a stub.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb } from "../src/index.js";
import { DhtPeering } from "../src/peering/dht-peering.js";
import { StubSource } from "./helpers/stub-source.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { MERIT_RECORDS, MeritRecords } from "../src/node/merit-records.js";
import { signRecord } from "../src/node/record-signer.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { behavingFake } from "./helpers/hostile-server.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "merit-held-records";
const ROTATE_MS = 300;
/** Short: the first read's merit (a record new to the client) is long gone while the client goes on reading. */
const MERIT_MS = 900;

describe("link merit for records a client holds", () => {
  const { nodes, stops, closers } = teardownEach();

  async function honestServer(): Promise<ToolDb> {
    const honest = new ToolDb({ server: true, host: "127.0.1.1", port: 0, topic: TOPIC, ...FAST });
    nodes.push(honest);
    await honest.ready;
    return honest;
  }

  const fake = () => behavingFake(TOPIC, closers);

  it("a client re-reading a key it holds keeps the honest server that answers it through rotations, while fakes rotate", { timeout: 60_000 }, async () => {
    const honest = await honestServer();
    await honest.putData("config", "stable");
    const client = new ToolDb({ topic: TOPIC, ...FAST, storageName: `merit-held-${Math.random()}` });
    nodes.push(client);
    await client.ready;
    const source = new StubSource([]);
    source.announce({ host: "127.0.1.1", port: portOf(honest) });
    const peering = new DhtPeering(client, source, TOPIC, { maxConnections: 2, dialRetries: 3, penaltyMs: 5000, random: () => 0, rotateIntervalMs: ROTATE_MS, meritWindowMs: MERIT_MS });
    stops.push(() => peering.stop());
    const linked = () => client.network.peers.some((p) => p.address === honest.nodeAddress());
    await waitUntil(linked, 5000, "the client to link the server");
    // The first read: a record new to the client, from the honest server.
    assert.equal(await client.getData("config", false, 2000), "stable");
    let honestDrops = 0;
    let fakeDrops = 0;
    client.on("peer-disconnect", (info) => {
      if (info.host === "127.0.1.1") honestDrops++;
      if (info.host === "127.0.0.10") fakeDrops++;
    });
    for (let i = 0; i < 4; i++) source.announce({ host: "127.0.0.10", port: (await fake()).port });
    const start = Date.now();
    // The app goes on reading its config, which it holds: only the honest server answers it.
    await waitUntil(
      async () => {
        await client.getData("config", false, 200);
        return honestDrops > 0 || (fakeDrops >= 4 && Date.now() - start > 3 * MERIT_MS);
      },
      30_000,
      "four rotations among the fakes, over three merit windows",
    );
    assert.equal(honestDrops, 0, "the honest server answering every read was rotated out for a fake");
    assert.ok(linked());
  });

  it("a modified peer that got a record from the client (its get, its subscribe, a stale put, the client's own write) and echoes it earns no merit; nor does a second fake echoing what the first got", { timeout: 60_000 }, async () => {
    const honest = await honestServer();
    for (const key of ["asked", "subscribed", "behind", "stable"]) await honest.putData(key, `${key} v`);
    // Two colluding fakes: A gets records from the client, both echo what A got when the client reads.
    const kept = new Map<string, unknown>();
    const [a, b] = [await fake(), await fake()];
    for (const f of [a, b]) {
      const behave = f.onFrame;
      f.onFrame = (link, frame) => {
        behave(link, frame);
        const data = frame.data as { k?: string } | undefined;
        if (frame.type === "put" && f === a && typeof data?.k === "string") kept.set(data.k, data);
        if (frame.type === "get" && kept.has(frame.key as string)) link.send({ type: "put", id: frame.id, to: [], data: kept.get(frame.key as string) });
      };
    }
    // A long grace: a read ends before it only once all three servers asked have answered (get-replies.ts).
    const client = new ToolDb({ topic: TOPIC, ...FAST, getGraceMs: 10_000, storageName: `merit-held-${Math.random()}`, peers: [honest, a, b].map((s) => ({ host: s instanceof ToolDb ? "127.0.1.1" : s.host, port: s instanceof ToolDb ? portOf(s) : s.port })) });
    nodes.push(client);
    await client.ready;
    await waitUntil(() => client.network.peers.length === 3, 5000, "the client to link the server and both fakes");
    const session = (port: number) => client.network.peers.find((p) => p.port === port) as PeerSession;
    const [sh, sa, sb] = [session(portOf(honest)), session(a.port), session(b.port)];
    // First reads: records new to the client, from the honest server (the fakes have none to echo).
    for (const key of ["asked", "subscribed", "behind", "stable"]) assert.equal(await client.getData(key, false, 500), `${key} v`);
    assert.ok(sh.servedAt > 0 && sa.servedAt === 0 && sb.servedAt === 0);
    // A key the client watches: its update, pushed, is a record new to the client as well.
    await client.subscribeData("news");
    await honest.putData("news", "pushed");
    await waitUntil(async () => (await client.records.get("news"))?.v === "pushed", 5000, "the update of a watched key");

    // A gets records from the client every way a client sends one.
    const link = [...a.links][0]!;
    link.send({ type: "get", id: "g1", to: [], key: "asked" });
    link.send({ type: "subscribe", id: "s1", to: [], key: "subscribed" });
    const stale = await signRecord(a.id.user, "behind", "stale", 1, 0, false);
    link.send({ type: "put", id: "p1", to: [], data: stale });
    await client.putData("mine", "the client's own");
    await waitUntil(() => ["asked", "subscribed", "behind", "mine"].every((k) => kept.has(k)), 5000, "A to get four records from the client");

    const reread = async (key: string) => {
      const began = Date.now();
      assert.ok(await client.getData(key, false, 10_000));
      assert.ok(Date.now() - began < 5000, `the read of ${key} ended by its grace: not all three servers answered`);
    };
    for (const s of [sh, sa, sb]) s.servedAt = 0;
    for (const key of ["asked", "subscribed", "behind", "mine"]) await reread(key);
    // Handed out, or the client's own: whoever delivers it proves nothing, the honest server included.
    assert.deepEqual([sh.servedAt, sa.servedAt, sb.servedAt], [0, 0, 0], "an echo of a record the client gave out earned merit");
    for (const key of ["stable", "news"]) {
      sh.servedAt = 0;
      await client.getData(key, false, 2000);
      assert.ok(sh.servedAt > 0, `the honest server re-delivering ${key}, which the client never gave out, earned no merit`);
    }
    assert.deepEqual([sa.servedAt, sb.servedAt], [0, 0]);
    assert.equal(honest.merit.size, 0, "a server keeps no merit records");
  });

  it("the records that earn merit are bounded, fail closed when forgotten, and leave on hand-out", () => {
    const merit = new MeritRecords(8);
    for (let i = 0; i < 100; i++) merit.delivered(`h${i}`);
    assert.ok(merit.size <= 16, `${merit.size} hashes held for a capacity of 8`);
    assert.equal(merit.proves("h0"), false, "a forgotten record earned merit");
    assert.equal(merit.proves("h99"), true);
    merit.handedOut("h99");
    assert.equal(merit.proves("h99"), false, "a record handed out earned merit");
    // Delivered and handed out over and over (a mesh peer answering what it reads): nothing grows.
    for (let i = 0; i < 100_000; i++) {
      merit.delivered(`x${i}`);
      merit.handedOut(`x${i}`);
    }
    assert.ok(merit.size <= 16);
    const node = new MeritRecords();
    for (let i = 0; i < 3 * MERIT_RECORDS; i++) node.delivered(`${i}`);
    assert.ok(node.size <= 2 * MERIT_RECORDS, `${node.size} hashes held by default`);
  });
});
