/**
 * SwarmDuplicates' rules with fake swarm peers: a swarm link the handshake
 * closed as a duplicate bans the peer's swarm key until the kept link
 * closes; the duplicate's own close, a link closed for another reason, and
 * a remote's close code without our own duplicate event ban nothing. The
 * real-swarm check is in network-hyperswarm.test.ts (two dual servers).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerInfo } from "hyperswarm";
import { CloseCode, type Connection } from "../src/network/connection.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { SwarmDuplicates } from "../src/network/swarm-duplicates.js";

function peerInfo(): PeerInfo & { banned: boolean } {
  const info = { publicKey: Buffer.alloc(32), client: true, topics: [], banned: false, disconnectedTime: 0, proven: false, ban: (v: boolean) => void (info.banned = v), reconnect: () => undefined };
  return info;
}
const connection = () => ({}) as Connection;
const session = (clientId: string, conn: Connection) => ({ clientId, connection: conn }) as unknown as PeerSession;
const quiet = () => undefined;

describe("swarm duplicates", { timeout: 10_000 }, () => {
  it("a swarm link closed as a duplicate bans the peer until the kept link closes", () => {
    const d = new SwarmDuplicates(quiet);
    const info = peerInfo();
    const swarmLink = connection();
    const kept = connection();
    d.duplicate("peer-a");
    d.swarmClosed(swarmLink, info, CloseCode.DUPLICATE);
    assert.equal(info.banned, true);
    d.sessionClosed(session("peer-a", swarmLink)); // the duplicate's own session (an existing link replaced)
    d.sessionClosed(session("peer-b", connection())); // another node's
    assert.equal(info.banned, true);
    d.sessionClosed(session("peer-a", kept));
    assert.equal(info.banned, false);
  });

  it("other closes ban nothing: another code, a remote's DUPLICATE code without our event, an event of an earlier tick", async () => {
    const d = new SwarmDuplicates(quiet);
    const info = peerInfo();
    d.duplicate("peer-a");
    d.swarmClosed(connection(), info, CloseCode.HANDSHAKE_TIMEOUT);
    d.swarmClosed(connection(), info, CloseCode.DUPLICATE);
    assert.equal(info.banned, false, "the event was used by the close that followed it");
    d.duplicate("peer-a");
    await Promise.resolve();
    d.swarmClosed(connection(), info, CloseCode.DUPLICATE);
    assert.equal(info.banned, false, "an event is only good for the close in the same tick");
  });

  it("clear lifts every ban (the swarm closing)", () => {
    const d = new SwarmDuplicates(quiet);
    const [a, b] = [peerInfo(), peerInfo()];
    d.duplicate("peer-a");
    d.swarmClosed(connection(), a, CloseCode.DUPLICATE);
    d.duplicate("peer-b");
    d.swarmClosed(connection(), b, CloseCode.DUPLICATE);
    assert.deepEqual([a.banned, b.banned], [true, true]);
    d.clear();
    assert.deepEqual([a.banned, b.banned], [false, false]);
  });
});
