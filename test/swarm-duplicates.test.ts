/**
 * SwarmDuplicates' rules with fake swarm peers: a swarm link the handshake
 * closed as a duplicate bans the peer's swarm key until the kept link
 * closes; the duplicate's own close, a link closed for another reason, and
 * a remote's close code on a link we did not mark (even in the same tick as
 * our own duplicate of another link) ban nothing. The
 * real-swarm check is in network-hyperswarm.test.ts (two dual servers).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerInfo } from "hyperswarm";
import { CloseCode, type Connection } from "../src/network/connection.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { MAX_KEYS_PER_PEER, SwarmDuplicates } from "../src/network/swarm-duplicates.js";
import { SwarmBans } from "../src/network/swarm-bans.js";

let keySeq = 0;
/** A swarm peer; each with its own swarm key unless `key` is given. */
function peerInfo(key = ++keySeq): PeerInfo & { banned: boolean } {
  const info = { publicKey: Buffer.alloc(32, key), client: true, topics: [], banned: false, disconnectedTime: 0, proven: false, ban: (v: boolean) => void (info.banned = v), reconnect: () => undefined };
  return info;
}
const connection = () => ({}) as Connection;
const session = (clientId: string, conn: Connection) => ({ clientId, connection: conn }) as unknown as PeerSession;
const quiet = () => undefined;

describe("swarm duplicates", { timeout: 10_000 }, () => {
  it("a swarm link closed as a duplicate bans the peer until the kept link closes", () => {
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const info = peerInfo();
    const swarmLink = connection();
    const kept = connection();
    d.duplicate("peer-a", swarmLink);
    d.swarmClosed(swarmLink, info, CloseCode.DUPLICATE);
    assert.equal(info.banned, true);
    d.sessionClosed(session("peer-a", swarmLink)); // the duplicate's own session (an existing link replaced)
    d.sessionClosed(session("peer-b", connection())); // another node's
    assert.equal(info.banned, true);
    d.sessionClosed(session("peer-a", kept));
    assert.equal(info.banned, false);
  });

  it("other closes ban nothing: another code, a remote's DUPLICATE code without our event, a link we did not mark", () => {
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const info = peerInfo();
    const marked = connection();
    d.duplicate("peer-a", marked);
    d.swarmClosed(marked, info, CloseCode.HANDSHAKE_TIMEOUT);
    d.swarmClosed(marked, info, CloseCode.DUPLICATE);
    assert.equal(info.banned, false, "the mark was used by the close that followed it");
    d.swarmClosed(connection(), info, CloseCode.DUPLICATE);
    assert.equal(info.banned, false, "a remote's DUPLICATE code with no event of ours");
  });

  it("a remote's DUPLICATE close on another swarm link, in the same tick as our duplicate of a WebSocket link, bans nothing", () => {
    // The handshake closes a WebSocket link as a duplicate (no swarm close follows it); before the
    // microtask ends, a swarm link to another node is closed by its remote with code 4003. The mark
    // was one microtask long and not tied to a link: that remote's close was taken for ours.
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const other = peerInfo();
    d.duplicate("peer-a", connection()); // the WebSocket link, closed
    d.swarmClosed(connection(), other, CloseCode.DUPLICATE); // the remote's close on another link
    assert.equal(other.banned, false, "another node's swarm key was banned under peer-a's id");
    d.sessionClosed(session("peer-a", connection()));
    assert.equal(other.banned, false);
  });

  it("our duplicate close counts whenever it comes after its mark (no timing window)", async () => {
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const info = peerInfo();
    const link = connection();
    d.duplicate("peer-a", link);
    await Promise.resolve();
    d.swarmClosed(link, info, CloseCode.DUPLICATE);
    assert.equal(info.banned, true);
  });

  it("a stranger's duplicate held under a node's id (a replayed record) does not keep the node's own duplicate from being banned", () => {
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const [stranger, honest] = [peerInfo(), peerInfo()];
    const [strangerLink, honestLink] = [connection(), connection()];
    d.duplicate("peer-a", strangerLink);
    d.swarmClosed(strangerLink, stranger, CloseCode.DUPLICATE);
    d.duplicate("peer-a", honestLink);
    d.swarmClosed(honestLink, honest, CloseCode.DUPLICATE);
    assert.deepEqual([stranger.banned, honest.banned], [true, true], "both keys banned (the node's was not, before)");
    d.sessionClosed(session("peer-a", strangerLink)); // a held duplicate's own session: not the kept link
    assert.deepEqual([stranger.banned, honest.banned], [true, true]);
    d.sessionClosed(session("peer-a", connection())); // the kept link
    assert.deepEqual([stranger.banned, honest.banned], [false, false]);
  });

  it("at most MAX_KEYS_PER_PEER keys are held under one id: past that the oldest is released", () => {
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const infos = Array.from({ length: MAX_KEYS_PER_PEER + 1 }, () => peerInfo());
    for (const info of infos) {
      const link = connection();
      d.duplicate("peer-a", link);
      d.swarmClosed(link, info, CloseCode.DUPLICATE);
    }
    assert.deepEqual(infos.map((i) => i.banned), [false, ...Array<boolean>(MAX_KEYS_PER_PEER).fill(true)]);
    // A key held already, closed again, takes no second place: nothing more is released.
    const again = peerInfo(infos[1]!.publicKey[0]!);
    const againLink = connection();
    d.duplicate("peer-a", againLink);
    d.swarmClosed(againLink, again, CloseCode.DUPLICATE);
    assert.deepEqual([again.banned, ...infos.slice(2).map((i) => i.banned)], Array<boolean>(MAX_KEYS_PER_PEER).fill(true));
    d.clear();
    assert.ok([again, ...infos.slice(2)].every((i) => !i.banned));
  });

  it("clear lifts every ban (the swarm closing)", () => {
    const d = new SwarmDuplicates(new SwarmBans(), quiet);
    const [a, b] = [peerInfo(), peerInfo()];
    const [la, lb] = [connection(), connection()];
    d.duplicate("peer-a", la);
    d.swarmClosed(la, a, CloseCode.DUPLICATE);
    d.duplicate("peer-b", lb);
    d.swarmClosed(lb, b, CloseCode.DUPLICATE);
    assert.deepEqual([a.banned, b.banned], [true, true]);
    d.clear();
    assert.deepEqual([a.banned, b.banned], [false, false]);
  });
});
