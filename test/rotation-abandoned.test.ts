/**
 * A DHT client's rotation candidate that is abandoned (src/peering/client-rotation.ts):
 * a stranger dialed for a slot whose link then does not take it. Before, such
 * a candidate was not backed off: one whose link came up as the link it was
 * to replace served the client had been made Verified by that link, so every
 * later rotation dialed it first, ahead of servers never dialed; one that
 * linked as no server ranked with addresses never dialed. Hostile servers are
 * raw WebSocket peers on loopback; the DHT's part, finding addresses, is a stub.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb } from "../src/index.js";
import { DhtPeering } from "../src/peering/dht-peering.js";
import { Tier } from "../src/peering/candidate-pool.js";
import { PROBATION_TICKS } from "../src/network/slot-rotation.js";
import { StubSource } from "./helpers/stub-source.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "rotation-abandoned";
const MERIT_MS = 1500;

describe("a DHT client's abandoned rotation candidate", () => {
  const { nodes, stops, closers } = teardownEach();

  /** A real server (127.0.1.1) holding "held", a client linked to it alone (one slot), its rotation driven by hand. */
  async function rig() {
    const honest = new ToolDb({ server: true, host: "127.0.1.1", port: 0, topic: TOPIC, ...FAST });
    nodes.push(honest);
    await honest.ready;
    await honest.putData("held", "by the real server");
    const client = new ToolDb({ topic: TOPIC, ...FAST, storageName: `rotation-abandoned-${Math.random()}` });
    nodes.push(client);
    await client.ready;
    const source = new StubSource([{ host: "127.0.1.1", port: portOf(honest) }]);
    // Rotations only by hand (the longest interval allowed), a short merit window.
    const peering = new DhtPeering(client, source, TOPIC, { maxConnections: 1, dialRetries: 3, penaltyMs: 5000, random: () => 0, rotateIntervalMs: 2 ** 31 - 1, meritWindowMs: MERIT_MS });
    stops.push(() => peering.stop());
    const address = honest.peerAccount.getAddress();
    const linked = () => client.network.peers.some((p) => p.address === address);
    await waitUntil(linked, 5000, "the client to link the server");
    await client.subscribeData("quiet"); // links are judged once asked for a record
    const rotation = (peering as unknown as { clientRotation: { tick(): void } }).clientRotation;
    const candidate = (host: string, port: number) => peering.candidates().find((c) => c.host === host && c.port === port);
    return { honest, client, source, peering, rotation, linked, candidate, session: () => client.network.peers.find((p) => p.address === address)! };
  }

  async function hostile(host: string): Promise<HostileServer> {
    const h = await HostileServer.start(TOPIC, host);
    closers.push(h);
    return h;
  }

  it("one whose link came up after the link it was to replace served the client rests: the next rotation dials a server never dialed", { timeout: 60_000 }, async () => {
    const { client, source, rotation, linked, candidate, session } = await rig();
    const fake = await hostile("127.0.0.10");
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    fake.beforePong = () => held; // its first handshake waits for the test; later ones do not
    source.announce({ host: fake.host, port: fake.port });
    for (let i = 0; i < PROBATION_TICKS + 1; i++) rotation.tick();
    await waitUntil(() => fake.received.length > 0, 5000, "the rotation to dial the fake for the server's slot");
    // Meanwhile the server serves a read: its link earns its slot, and the fake's link, once up, is abandoned.
    assert.equal(await client.getData("held", false, 2000), "by the real server");
    release();
    await waitUntil(() => fake.handshakes === 1, 5000, "the fake's handshake");
    await waitUntil(() => fake.links.size === 0 && client.network.peers.length === 1, 5000, "the fake's link to be closed");
    assert.ok(linked());
    const abandoned = candidate(fake.host, fake.port)!;
    assert.ok(abandoned.restUntil > client.monotonic(), "the abandoned candidate was not backed off");
    assert.equal(abandoned.tier, Tier.Found, "the abandoned candidate ranks as a server this client verified");

    // A real server announced later, never dialed; the first server's merit lapses.
    const other = new ToolDb({ server: true, host: "127.0.1.2", port: 0, topic: TOPIC, ...FAST });
    nodes.push(other);
    await other.ready;
    source.announce({ host: "127.0.1.2", port: portOf(other) });
    await waitUntil(() => client.now() - session().servedAt > MERIT_MS, 5000, "the server's merit to lapse");
    rotation.tick();
    const otherAddress = other.peerAccount.getAddress();
    await waitUntil(() => client.network.peers.some((p) => p.address === otherAddress), 5000, "the next rotation to link the server never dialed");
    assert.equal(fake.handshakes, 1, "the abandoned candidate was dialed again at the next rotation");
  });

  it("one that links as no server backs off as a failed dial does", { timeout: 30_000 }, async () => {
    const { client, source, rotation, linked, candidate } = await rig();
    const liar = await hostile("127.0.0.11");
    liar.isServer = false;
    source.announce({ host: liar.host, port: liar.port });
    for (let i = 0; i < PROBATION_TICKS + 1; i++) rotation.tick();
    await waitUntil(() => liar.handshakes === 1, 5000, "the rotation to link the liar");
    await waitUntil(() => liar.links.size === 0 && client.network.peers.length === 1, 5000, "the liar's link to be closed");
    assert.ok(linked(), "the server's link was rotated out for a peer that is no server");
    const c = candidate(liar.host, liar.port)!;
    assert.ok(c.until > client.monotonic(), "the liar was not backed off");
    assert.equal(c.backoff?.attempts, 1);
  });
});
