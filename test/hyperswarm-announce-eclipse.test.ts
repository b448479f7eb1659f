/**
 * Bogus announces on a Hyperswarm topic (outside check, attack 3): key pairs
 * that announce the topic and answer the handshake as proven clients (a fresh
 * key each, `isServer: false`, heartbeats answered). Only servers announce a
 * topic, so such a peer is a stranger lying about what it is there for; a
 * node that keeps every link it dials to one holds hyperswarm's 64 peer slots
 * (`maxPeers`) with them and stops dialing, so a server announced later is
 * never reached. The third case: announcers that claim to be servers and
 * answer what a client's server watch asks (empty queries, NOT_FOUND
 * function calls, acknowledged puts) but serve no record, holding every
 * swarm slot of a client on Hyperswarm alone: the client rotates its slots
 * on merit (src/network/swarm-slots.ts). Real Hyperswarm on a private
 * HyperDHT testnet on loopback.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DHTServer, startBootstrapNode } from "../src/entries/discovery.js";
import type { HyperswarmNetwork } from "../src/network/hyperswarm-network.js";
import { fileTestnet, loopbackNodes, swarmOn } from "./helpers/hyperdht-testnet.js";
import { waitUntil } from "./helpers/nodes.js";
import { announcingNode, fakeFilledTopic, staleAnnounce, topicAnnouncers } from "./helpers/swarm-announcers.js";
import { withTimeout } from "./helpers/wait.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
/** More than hyperswarm's default maxPeers (64). */
const ANNOUNCERS = 72;
/** The third case: a client's swarm slots, and the behaving fakes that hold them. */
const SLOTS = 8;
const FAKES = 16;
/** The fakes never end their side of a link the client closes: a rotated-out one lingered a second (the default) before the next dial. */
const LINGER_MS = 200;
const testnet = fileTestnet();
const unhandled = collectUnhandledRejections();

describe("bogus announces on a Hyperswarm topic", () => {
  const node = loopbackNodes(T);

  it("a client whose swarm slots were taken by announcers that answer as clients still reaches a server announced later, and writes to it", { timeout: 90_000 }, async () => {
    const { topic, dht } = await announcingNode(testnet(), "hs-eclipse");
    const attack = await topicAnnouncers(dht, topic, ANNOUNCERS);

    const cli = await node({ topic, networkAdapter: swarmOn(testnet()) });
    // The client dialed the announcers (hyperswarm's peer slots).
    await waitUntil(() => attack.connections() >= 64, T, "the client to dial 64 announcers");

    const srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    await (srv.network as HyperswarmNetwork).joined;
    try {
      await waitUntil(() => cli.network.isConnected(srv.network.getClientAddress()), 30_000, "the client to link the real server");
    } catch (err) {
      const swarm = (cli.network as HyperswarmNetwork).hyperswarm as unknown as { stats: { connects: { client: { attempted: number } } } };
      const cs = swarm.stats.connects.client;
      const liars = cli.network.peers.filter((p) => !p.isServer).length;
      throw new Error(`${(err as Error).message}: the client holds ${cli.network.peers.length} links, ${liars} of them to announcers that say they are not servers; dials ${cs.attempted}`);
    }
    await cli.putData("after-eclipse", "reached", false, { ack: 1, timeoutMs: T });
    assert.equal(await srv.getData("after-eclipse", false, 1000), "reached");
    await dht.destroy();
    assert.deepEqual(unhandled, []);
  });

  it("two DHTServers on Hyperswarm beside announcers that prove a fresh key each and say they are servers stay linked", { timeout: 90_000 }, async () => {
    // Over Hyperswarm a server dials whatever the topic lookup returns, so "dialled by this node" is no
    // evidence of a real server: before, the fakes held both servers' 12 mesh links and the link between
    // the real ones was pruned again and again (attack/mesh-eclipse.mjs: linked and dropped 26 times in 20 s).
    const { topic, dht } = await announcingNode(testnet(), "hs-mesh-eclipse");
    await topicAnnouncers(dht, topic, 40, { isServer: true });
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const hyperswarm = { bootstrap: testnet().bootstrap, dhtHost: "127.0.0.1" };
    const servers = [new DHTServer(topic, "127.0.0.1", 0, { bootstrap: [`127.0.0.1:${seed.address().port}`], hyperswarm })];
    servers.push(new DHTServer(topic, "127.0.0.1", 0, { bootstrap: [`127.0.0.1:${seed.address().port}`], hyperswarm }));
    try {
      for (const s of servers) await s.start();
      const [a, b] = servers.map((s) => s.db);
      const linked = () => a!.network.isConnected(b!.network.getClientAddress()) && b!.network.isConnected(a!.network.getClientAddress());
      await waitUntil(linked, 30_000, "the real servers to link");
      // Held through the mesh's pruning, not a passing link: linked at each of 20 looks over 5 s (before the fix the
      // link was pruned within a few hundred ms of being made, over and over: unlinked at most looks).
      let drops = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 250));
        if (!linked()) drops++;
      }
      assert.equal(drops, 0, `the real servers were unlinked at ${drops} of 20 looks; a holds ${a!.network.peers.length} links, b ${b!.network.peers.length}`);
    } finally {
      await withTimeout(Promise.all(servers.map((s) => s.stop())), T, "servers to stop");
      await seed.close();
      await dht.destroy();
    }
    assert.deepEqual(unhandled, []);
  });

  it("a client whose swarm slots behaving fakes hold reaches a real server announced later and reads its record", { timeout: 120_000 }, async () => {
    const { topic, dht, attack, cli } = await fakeFilledTopic(testnet(), node, "hs-rotation", FAKES, SLOTS, { closeLinger: LINGER_MS });
    let rotations = 0;
    let mostLinks = 0;
    cli.on("refused", (e) => {
      if (/rotated out of its swarm slot/.test(e.reason)) rotations++;
      mostLinks = Math.max(mostLinks, cli.network.peers.length);
    });
    await cli.subscribeData("held");
    await waitUntil(() => attack.connections() >= SLOTS && cli.network.peers.length >= SLOTS, T, "the client to fill its slots with fakes");

    const srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    await srv.putData("held", "by the real server");
    await (srv.network as HyperswarmNetwork).joined;
    try {
      await waitUntil(() => cli.network.isConnected(srv.network.getClientAddress()), 60_000, "the client to link the real server");
    } catch (err) {
      throw new Error(`${(err as Error).message}: the client holds ${cli.network.peers.length} links; ${attack.connections()} links made to fakes`);
    }
    assert.equal(await cli.getData("held", false, 5000), "by the real server");
    // Kept once it served what the client asked for: fakes go on taking turns around it.
    const before = rotations;
    await waitUntil(() => rotations >= before + 4, 30_000, "four more rotations");
    assert.ok(cli.network.isConnected(srv.network.getClientAddress()), "the real server's link was rotated out");
    // Make before break: the replacement is linked before the link it replaces closes.
    assert.ok(mostLinks <= SLOTS + 1, `the client held ${mostLinks} links at once`);
    await dht.destroy();
    assert.deepEqual(unhandled, []);
  });

  it("a client whose slots are full keeps its server when no other announcer is known: rotating it out frees a slot for nobody", { timeout: 60_000 }, async () => {
    const topic = `hs-alone-${process.pid}`;
    const srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    await (srv.network as HyperswarmNetwork).joined;
    const cli = await node({ topic, networkAdapter: swarmOn(testnet(), { maxPeers: 1, rotateInterval: 300 }) });
    let rotations = 0;
    cli.on("refused", (e) => {
      if (/rotated out of its swarm slot/.test(e.reason)) rotations++;
    });
    await waitUntil(() => cli.network.isConnected(srv.network.getClientAddress()), 30_000, "the client to link the server");
    // The client only holds its link (no read earns merit); rotations tick on.
    const ticks = () => (cli.network as unknown as { slots: { rotation: { tick: number } } }).slots.rotation.tick;
    const start = ticks();
    await waitUntil(() => ticks() >= start + 6, T, "six rotation ticks");
    assert.equal(rotations, 0, "the only server was rotated out with no other announcer to take its slot");
    assert.ok(cli.network.isConnected(srv.network.getClientAddress()));
    assert.deepEqual(unhandled, []);
  });

  it("a client with one slot, its server and only stalling or unreachable other announcers never loses its link to a rotation", { timeout: 90_000 }, async () => {
    // Break before make, the server's slot was freed at the first rotation for announcers that never became a link
    // (a stale announce: rotated out, without a link until a tick found the slot unfilled) or stalled in the handshake.
    const { topic, dht } = await announcingNode(testnet(), "hs-stall");
    const srv = await node({ topic, server: true, networkAdapter: swarmOn(testnet()) });
    await (srv.network as HyperswarmNetwork).joined;
    const cli = await node({ topic, networkAdapter: swarmOn(testnet(), { maxPeers: 1, rotateInterval: 300, replaceTimeout: 3000 }) });
    const linked = () => cli.network.isConnected(srv.network.getClientAddress());
    await waitUntil(linked, 30_000, "the client to link the server");
    // A client that watches a key nobody writes: its link is judged (asked for a record) and earns nothing.
    await cli.subscribeData("quiet");
    let rotations = 0;
    let mostLinks = 0;
    cli.on("refused", (e) => {
      if (/rotated out of its swarm slot/.test(e.reason)) rotations++;
    });
    let unlinked = 0;
    const watch = setInterval(() => {
      if (!linked()) unlinked++;
      mostLinks = Math.max(mostLinks, (cli.network as HyperswarmNetwork).hyperswarm?.connections.size ?? 0);
    }, 5);
    try {
      const stalling = await topicAnnouncers(dht, topic, 3, { stall: true });
      await staleAnnounce(dht, topic);
      await staleAnnounce(dht, topic);
      (cli.network as HyperswarmNetwork).refresh();
      await waitUntil(() => stalling.connections() >= 2, 30_000, "the client to try stalling announcers for a rotation");
      const ticks = () => (cli.network as unknown as { slots: { rotation: { tick: number } } }).slots.rotation.tick;
      const start = ticks();
      await waitUntil(() => ticks() >= start + 15, 30_000, "fifteen more rotation ticks");
    } finally {
      clearInterval(watch);
    }
    assert.equal(rotations, 0, "the server was rotated out with no server to replace it");
    assert.equal(unlinked, 0, `the client was without its server at ${unlinked} looks`);
    assert.ok(mostLinks <= 2, `the client held ${mostLinks} swarm links at once (cap 1, one more while a rotation dials)`);
    await dht.destroy();
    assert.deepEqual(unhandled, []);
  });
});
