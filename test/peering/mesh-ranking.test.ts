/**
 * The order a full server mesh closes its links in (src/peering/mesh-ranking.ts):
 * by evidence that the peer is a server, not by its own word, with one
 * address range's incoming links beyond the cap first. Plain objects stand
 * in for sessions; the sockets are in mesh-eclipse.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerSession } from "../../src/network/peer-session.js";
import { MeshEvidence, meshEvidence, meshRange, pruneOrder } from "../../src/peering/mesh-ranking.js";
import { resolveMeshOptions } from "../../src/peering/server-mesh.js";

interface Fake {
  name: string;
  host?: string;
  outgoing?: boolean;
  proven?: boolean;
  sentNewRecord?: boolean;
  openedAt: number;
  transport?: string;
}

function session(f: Fake): PeerSession {
  return {
    clientId: f.name,
    host: f.host,
    outgoing: f.outgoing ?? false,
    provenServer: f.proven ?? true,
    sentNewRecord: f.sentNewRecord ?? false,
    openedAt: f.openedAt,
    connection: { info: { transport: f.transport ?? "websocket" } },
  } as unknown as PeerSession;
}

const names = (order: PeerSession[]) => order.map((s) => s.clientId);
const range = (s: PeerSession) => meshRange(s, ["127.0.0.1"]);

describe("server mesh ranking", { timeout: 10_000 }, () => {
  it("evidence: dialled over records received over a declared server over an unproven one", () => {
    assert.equal(meshEvidence(session({ name: "a", outgoing: true, openedAt: 0 })), MeshEvidence.Dialled);
    assert.equal(meshEvidence(session({ name: "b", sentNewRecord: true, openedAt: 0 })), MeshEvidence.Exchanged);
    assert.equal(meshEvidence(session({ name: "c", openedAt: 0 })), MeshEvidence.Declared);
    assert.equal(meshEvidence(session({ name: "d", proven: false, outgoing: true, sentNewRecord: true, openedAt: 0 })), MeshEvidence.Unproven);
  });

  it("ranges: /24, /64, an IPv4-mapped address as IPv4, exempt IPs alone, no IP shared", () => {
    assert.equal(range(session({ name: "a", host: "10.1.2.3", openedAt: 0 })), "10.1.2.0/24");
    assert.equal(range(session({ name: "b", host: "::ffff:10.1.2.9", openedAt: 0 })), "10.1.2.0/24");
    assert.equal(range(session({ name: "c", host: "2001:db8:1:2:3::1", openedAt: 0 })), "2001:db8:1:2::/64");
    // Each link from an exempt IP stands alone (the operator's own hosts), as in the connection gate.
    assert.notEqual(range(session({ name: "d", host: "127.0.0.1", openedAt: 0 })), range(session({ name: "d2", host: "127.0.0.1", openedAt: 1 })));
    assert.equal(range(session({ name: "e", openedAt: 0 })), range(session({ name: "f", openedAt: 1 })));
  });

  it("without crowding: least evidence first, then the newest (the old order among equals)", () => {
    const links = [
      session({ name: "dialled-new", host: "10.0.1.1", outgoing: true, openedAt: 9 }),
      session({ name: "records", host: "10.0.2.1", sentNewRecord: true, openedAt: 8 }),
      session({ name: "declared-old", host: "10.0.3.1", openedAt: 1 }),
      session({ name: "declared-new", host: "10.0.4.1", openedAt: 7 }),
      session({ name: "legacy", host: "10.0.5.1", proven: false, openedAt: 0 }),
    ];
    assert.deepEqual(names(pruneOrder(links, 3, range)), ["legacy", "declared-new", "declared-old", "records", "dialled-new"]);
  });

  it("a range's incoming links beyond the cap go first, whatever they showed; its best and oldest are kept", () => {
    const links = [
      ...Array.from({ length: 5 }, (_, i) => session({ name: `fake${i}`, host: `10.9.9.${i + 2}`, sentNewRecord: i === 4, openedAt: i })),
      session({ name: "real-in", host: "10.0.0.5", openedAt: 10 }),
      // Dialled links are not counted in their range: this node chose them.
      session({ name: "dialled", host: "10.9.9.200", outgoing: true, openedAt: 11 }),
    ];
    const order = names(pruneOrder(links, 2, range));
    // fake4 (records) and fake0 (oldest) are the range's two kept; fake3, fake2, fake1 are crowded, newest first.
    assert.deepEqual(order.slice(0, 3), ["fake3", "fake2", "fake1"]);
    assert.deepEqual(order.slice(3), ["real-in", "fake0", "fake4", "dialled"]);
  });

  it("twelve fake servers from one /24, then a real one from elsewhere: a fake is pruned, not the real server", () => {
    const fakes = Array.from({ length: 12 }, (_, i) => session({ name: `fake${i}`, host: "10.66.0.2", openedAt: i }));
    const real = session({ name: "real", host: "192.0.2.7", openedAt: 100 });
    const { maxLinks, maxLinksPerRange } = resolveMeshOptions();
    const victims = names(pruneOrder([...fakes, real], maxLinksPerRange, range).slice(0, 13 - maxLinks));
    assert.deepEqual(victims, ["fake11"]);
  });

  it("links dialled from a Hyperswarm lookup past their share go first; a server dialled from the DHT is kept", () => {
    const fakes = Array.from({ length: 12 }, (_, i) => session({ name: `swarm-${i}`, host: "127.0.0.1", outgoing: true, openedAt: i, transport: "hyperswarm" }));
    const real = session({ name: "real", host: "127.0.0.1", outgoing: true, openedAt: 20 });
    const order = names(pruneOrder([...fakes, real], 3, range, 6));
    assert.deepEqual(order.slice(0, 6).sort(), ["swarm-10", "swarm-11", "swarm-6", "swarm-7", "swarm-8", "swarm-9"], "the newest swarm-dialled links past six go first");
    assert.equal(order.at(-1), "real", "the real server goes last");
    // Without the cap (the default), at equal evidence swarm-dialled links still go first, the newest first.
    assert.deepEqual(names(pruneOrder([...fakes, real], 3, range)).slice(0, 2), ["swarm-11", "swarm-10"]);
  });

  it("options: the range cap defaults to a quarter of maxLinks and must be a positive integer", () => {
    assert.equal(resolveMeshOptions().maxLinksPerRange, 3);
    assert.equal(resolveMeshOptions({ minLinks: 2, maxLinks: 3 }).maxLinksPerRange, 1);
    assert.throws(() => resolveMeshOptions({ maxLinksPerRange: 0 }), /maxLinksPerRange/);
  });
});
