/**
 * Bogus announces on a Hyperswarm topic (outside check, attack 3): key pairs
 * that announce the topic and answer the handshake as proven clients (a fresh
 * key each, `isServer: false`, heartbeats answered). Only servers announce a
 * topic, so such a peer is a stranger lying about what it is there for; a
 * node that keeps every link it dials to one holds hyperswarm's 64 peer slots
 * (`maxPeers`) with them and stops dialing, so a server announced later is
 * never reached. Real Hyperswarm on a private HyperDHT testnet on loopback.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import HyperDHT, { type KeyPair } from "hyperdht";
import type { SwarmSocket } from "hyperswarm";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { DHTServer, startBootstrapNode } from "../src/entries/discovery.js";
import { HyperswarmNetwork, topicKey } from "../src/network/hyperswarm-network.js";
import { handshakeNonce, handshakeProofDigest, signPeerRecord } from "../src/records/peer-record.js";
import { randomId } from "../src/base/random.js";
import { fileTestnet, swarmOn } from "./helpers/hyperdht-testnet.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { RawTcpLink, rawIdentity, closedAfterEachTest } from "./helpers/raw-peer.js";
import { withTimeout } from "./helpers/wait.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
/** More than hyperswarm's default maxPeers (64). */
const ANNOUNCERS = 72;
const testnet = fileTestnet();
const unhandled = collectUnhandledRejections();

/** The parts of hyperdht's API the announcers use (not in types/hyperswarm.d.ts). */
interface AnnouncingDht {
  createServer(onConnection: (socket: SwarmSocket) => void): { listen(keyPair: KeyPair): Promise<void> };
  announce(topic: Buffer, keyPair: KeyPair, relayAddresses: unknown[]): { finished(): Promise<void> };
}

/** Announcers on one HyperDHT node that answer every ping as a proven client (or server) of their own fresh key. */
async function clientLikeAnnouncers(node: HyperDHT, topic: string, n: number, isServer = false): Promise<{ connections: () => number }> {
  const dht = node as unknown as AnnouncingDht;
  let connections = 0;
  for (let i = 0; i < n; i++) {
    const id = await rawIdentity();
    const server = dht.createServer((socket) => {
      connections++;
      socket.on("error", () => undefined);
      void RawTcpLink.over(socket, { topic, id }).then(async (link) => {
        const ping = await link.next((f) => f.type === "ping", T).catch(() => undefined);
        if (!ping || typeof ping.nonce !== "string") return;
        const peer = await signPeerRecord(id.user, topic, "127.0.0.1", 0, Date.now());
        const proof = await id.user.signData(handshakeProofDigest("pong", ping.nonce, peer));
        link.next((f) => f.type === "proof", T).then(
          () => link.send({ type: "proofAck", id: randomId(), to: [] }),
          () => undefined,
        );
        link.send({ type: "pong", id: ping.id, to: [], clientId: id.clientId, isServer, servers: [], peer, proof, nonce: handshakeNonce() });
      });
    });
    const keyPair = HyperDHT.keyPair();
    await server.listen(keyPair);
    await dht.announce(topicKey(topic), keyPair, []).finished();
  }
  return { connections: () => connections };
}

describe("bogus announces on a Hyperswarm topic", () => {
  const nodes = closedAfterEachTest<ToolDb>(T);
  async function node(opts: Partial<ToolDbOptions>): Promise<ToolDb> {
    const db = new ToolDb({ host: "127.0.0.1", port: 0, ...FAST, ...opts });
    nodes.push(db);
    await db.ready;
    return db;
  }

  it("a client whose swarm slots were taken by announcers that answer as clients still reaches a server announced later, and writes to it", { timeout: 90_000 }, async () => {
    const topic = `hs-eclipse-${process.pid}`;
    const dht = testnet().createNode();
    await dht.fullyBootstrapped();
    const attack = await clientLikeAnnouncers(dht, topic, ANNOUNCERS);

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
    const topic = `hs-mesh-eclipse-${process.pid}`;
    const dht = testnet().createNode();
    await dht.fullyBootstrapped();
    await clientLikeAnnouncers(dht, topic, 40, true);
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const hyperswarm = { bootstrap: testnet().bootstrap, dhtHost: "127.0.0.1" };
    const servers = [new DHTServer(topic, "127.0.0.1", 0, { bootstrap: [`127.0.0.1:${seed.address().port}`], hyperswarm })];
    servers.push(new DHTServer(topic, "127.0.0.1", 0, { bootstrap: [`127.0.0.1:${seed.address().port}`], hyperswarm }));
    try {
      for (const s of servers) await s.start();
      const [a, b] = servers.map((s) => s.db);
      const linked = () => a!.network.isConnected(b!.network.getClientAddress()) && b!.network.isConnected(a!.network.getClientAddress());
      await waitUntil(linked, 30_000, "the real servers to link");
      // Held through the mesh's pruning, not a passing link: linked at each of 10 looks over 10 s.
      let drops = 0;
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        if (!linked()) drops++;
      }
      assert.equal(drops, 0, `the real servers were unlinked at ${drops} of 10 looks; a holds ${a!.network.peers.length} links, b ${b!.network.peers.length}`);
    } finally {
      await withTimeout(Promise.all(servers.map((s) => s.stop())), T, "servers to stop");
      await seed.close();
      await dht.destroy();
    }
    assert.deepEqual(unhandled, []);
  });
});
