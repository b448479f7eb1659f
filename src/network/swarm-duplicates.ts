import type { PeerInfo } from "hyperswarm";
import { CloseCode, type Connection } from "./connection.js";
import type { PeerSession } from "./peer-session.js";

/**
 * Keeps a Hyperswarm link closed as a duplicate from coming back. A node
 * linked to a peer over WebSocket and over Hyperswarm keeps one link and
 * closes the other ("duplicate link to the same node"). hyperswarm dials a
 * closed peer again, and every topic lookup finds it again, so the closed
 * link came back every 1 to 3 s on both sides, a signed handshake each
 * time, for as long as the kept link stood. While it stands the peer's
 * swarm key is banned here (hyperswarm neither dials it nor takes its
 * dials); when the kept link closes the ban lifts, and the next lookup may
 * link the peer over Hyperswarm again.
 */
export class SwarmDuplicates {
  /** The node whose duplicate the handshake is closing now (its "duplicate" event comes just before the close). */
  private closing: string | undefined;
  /** Peers whose swarm link was closed as a duplicate: the key banned, and the connection closed. */
  private readonly held = new Map<string, { info: PeerInfo; closed: Connection }>();

  constructor(private readonly log: (format: string, ...args: unknown[]) => void) {}

  /** The handshake is about to close a duplicate link to `peer` (any transport). */
  duplicate(peer: string): void {
    this.closing = peer;
    queueMicrotask(() => (this.closing = undefined));
  }

  /** A swarm connection to `info` closed with `code`. */
  swarmClosed(connection: Connection, info: PeerInfo, code: number): void {
    const peer = this.closing;
    this.closing = undefined;
    if (code !== CloseCode.DUPLICATE || peer === undefined || this.held.has(peer)) return;
    this.held.set(peer, { info, closed: connection });
    info.ban(true);
    this.log("swarm link to %s closed as a duplicate: not dialed or taken while the kept link stands", peer);
  }

  /** A session closed: when it is the kept link of a held peer, the peer may be linked over Hyperswarm again. */
  sessionClosed(session: PeerSession): void {
    const entry = this.held.get(session.clientId);
    if (!entry || entry.closed === session.connection) return;
    this.held.delete(session.clientId);
    entry.info.ban(false);
  }

  /** The swarm is closing: nothing is held. */
  clear(): void {
    for (const { info } of this.held.values()) info.ban(false);
    this.held.clear();
  }
}
