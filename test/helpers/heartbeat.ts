import assert from "node:assert/strict";
import type { ToolDb } from "../../src/index.js";
import { CloseCode } from "../../src/network/connection.js";
import { record } from "./wait.js";

/**
 * Two visits of a node's heartbeat sweep on a clock the test moves (ManualClock, GatedClock): at the first
 * every link is pinged and `proveAlive` has the live peers show a sign of
 * life (answering the ping, then a request the node answers); at the second
 * exactly the peer `silentPeerId`, which answered nothing, is dropped with
 * HEARTBEAT_TIMEOUT.
 */
export async function silentPeerDropped(node: ToolDb, clock: { advance(ms: number): void }, interval: number, silentPeerId: string, proveAlive: () => Promise<unknown>): Promise<void> {
  const peers = node.network.peers.length;
  clock.advance(interval); // first visit: every link is pinged
  await proveAlive();
  assert.equal(node.network.peers.length, peers, "no one dropped at the first visit");
  const dropped = record(node, "peer-disconnect");
  clock.advance(interval); // second visit: only the silent peer gave no sign of life
  dropped.stop();
  assert.deepEqual(
    dropped.events.map(([info]) => [info.peerId, info.code]),
    [[silentPeerId, CloseCode.HEARTBEAT_TIMEOUT]],
  );
}
