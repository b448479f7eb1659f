/**
 * Attack: fake servers eclipse a server's mesh. Proving a key and saying
 * `isServer: true` costs a stranger one fresh key pair, so 12 raw links that
 * do it and link first used to fill a server's 12 mesh slots, and every real
 * server that linked later was the one pruned (MESH_FULL): the victim's
 * server sync and broadcast tree then reached only the attacker. The mesh
 * now ranks links by evidence (src/peering/mesh-ranking.ts): one address
 * range's incoming links beyond the cap go first, and a link this node
 * dialled, or one that brought new records, outranks a mere declaration.
 * Real sockets on loopback: the victim and the real servers are DHTServers
 * (their DhtPeering prunes as in production), the fakes raw `ws` links.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { DHTServer, type DhtNodeOptions } from "../../src/entries/discovery.js";
import { CloseCode } from "../../src/network/connection.js";
import { DEFAULT_MAX_SERVER_LINKS } from "../../src/peering/server-mesh.js";
import { waitUntil } from "../helpers/nodes.js";
import { RawLink, terminateRawLinks } from "../helpers/raw-peer.js";

const TOPIC = "mesh-eclipse";
/** The victim listens where raw links dial (127.0.0.1); the real servers stand for other hosts. */
const VICTIM_HOST = "127.0.0.1";
const REAL_A = "127.0.0.71";
const REAL_B = "127.0.0.72";

function options(extra: DhtNodeOptions = {}): DhtNodeOptions {
  return { mechanisms: { mainline: false, peerCache: false }, penaltyMs: 500, db: { wait: 50, maxReconnectDelay: 400 }, ...extra };
}

const nodes: DHTServer[] = [];
async function server(host: string, extra: DhtNodeOptions = {}): Promise<DHTServer> {
  const s = new DHTServer(TOPIC, host, 0, options(extra));
  nodes.push(s);
  await s.start();
  return s;
}

/** `count` raw links that prove a fresh key and say they are servers; `from(i)`: the address link i dials from. */
async function fakeServers(victim: DHTServer, count: number, from: (i: number) => string): Promise<RawLink[]> {
  const fakes: RawLink[] = [];
  for (let i = 0; i < count; i++) {
    const link = await RawLink.open(victim.port, { topic: TOPIC, from: from(i) });
    await link.provenHandshake({ isServer: true });
    fakes.push(link);
  }
  return fakes;
}

const serverLinks = (s: DHTServer) => s.db.network.peers.filter((p) => p.isServer);
const linkedTo = (s: DHTServer, other: DHTServer) => s.db.network.peers.some((p) => p.address === other.db.nodeAddress());
const meshFull = (fakes: RawLink[]) => fakes.filter((f) => f.isClosed);

async function closeCode(link: RawLink): Promise<number> {
  return (await link.waitClose(1000)).code;
}

/** The victim's data is intact: a record written before is readable, and each real server gets a fresh put. */
async function assertDataIntact(victim: DHTServer, reals: DHTServer[]): Promise<void> {
  assert.equal((await victim.db.records.get("before"))?.v, "written before the attack");
  await victim.db.putData("fresh", "written after the prune");
  for (const real of reals) {
    await waitUntil(async () => (await real.db.records.get("fresh"))?.v === "written after the prune", 10_000, "the fresh put at a real server");
  }
}

describe("attack: fake servers take over the server mesh", { timeout: 90_000 }, () => {
  afterEach(async () => {
    terminateRawLinks();
    await Promise.all(nodes.splice(0).map((s) => s.stop()));
  });

  it("12 fakes from one address link first; a real server that dials in later is kept, a fake is pruned", { timeout: 60_000 }, async () => {
    const victim = await server(VICTIM_HOST);
    await victim.db.putData("before", "written before the attack");
    const fakes = await fakeServers(victim, DEFAULT_MAX_SERVER_LINKS, () => "127.0.5.2");
    await waitUntil(() => serverLinks(victim).length === DEFAULT_MAX_SERVER_LINKS, 10_000, "the fakes fill the mesh");
    assert.ok(serverLinks(victim).every((s) => s.provenServer), "the fakes count as proven servers");

    const real = await server(REAL_A, { mechanisms: { mainline: false, peerCache: false, peers: [{ host: VICTIM_HOST, port: victim.port }] } });
    await waitUntil(() => meshFull(fakes).length > 0, 10_000, "the victim to prune a fake (the old code pruned the real server)");
    // Pruning is done once the mesh is back at its bound; the real server's link is the one kept.
    await waitUntil(() => serverLinks(victim).length === DEFAULT_MAX_SERVER_LINKS, 5000, "the mesh back at its bound");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(linkedTo(victim, real), "the real server's link was pruned");
    const pruned = meshFull(fakes);
    assert.equal(pruned.length, 1, "one fake pruned");
    assert.equal(await closeCode(pruned[0]!), CloseCode.MESH_FULL);
    await assertDataIntact(victim, [real]);
    assert.ok(linkedTo(victim, real), "the real server stays linked");
  });

  it("fakes from 11 ranges, a real server that brought records, then one the victim dials: both real ones kept", { timeout: 60_000 }, async () => {
    const victim = await server(VICTIM_HOST);
    await victim.db.putData("before", "written before the attack");
    // One fake per /24: the range cap alone cannot tell them apart, only evidence can.
    const fakes = await fakeServers(victim, DEFAULT_MAX_SERVER_LINKS - 1, (i) => `127.0.${10 + i}.2`);

    // A dials in after the fakes (the newest declared server) and, reconciling, pushes a record the victim lacked.
    const realA = await server(REAL_A);
    await realA.db.putData("from-a", "a record the victim did not have");
    realA.db.network.connectTo(VICTIM_HOST, victim.port);
    await waitUntil(async () => (await victim.db.records.get("from-a"))?.v !== undefined, 10_000, "A's record at the victim");
    assert.equal(serverLinks(victim).length, DEFAULT_MAX_SERVER_LINKS);

    // The victim dials B: 13 server links, one too many.
    const realB = await server(REAL_B);
    victim.db.network.connectTo(REAL_B, realB.port);
    await waitUntil(() => meshFull(fakes).length > 0, 10_000, "the victim to prune a fake, not A or B (the old code pruned B)");
    await waitUntil(() => serverLinks(victim).length === DEFAULT_MAX_SERVER_LINKS, 5000, "the mesh back at its bound");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(linkedTo(victim, realA), "A, which brought new records, was pruned");
    assert.ok(linkedTo(victim, realB), "B, which the victim dialled, was pruned");
    const pruned = meshFull(fakes);
    assert.equal(pruned.length, 1, "one fake pruned");
    assert.equal(await closeCode(pruned[0]!), CloseCode.MESH_FULL);
    // The newest fake went: among equals the order is as before.
    assert.equal(pruned[0], fakes.at(-1));
    await assertDataIntact(victim, [realA, realB]);
  });
});
