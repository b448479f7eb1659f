import type { PeerInfo } from "hyperswarm";
import { CloseCode, type Connection } from "./connection.js";
import type { PeerSession } from "./peer-session.js";
import type { SwarmBans } from "./swarm-bans.js";

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
 *
 * Entries are held by node and swarm key: a stranger replaying an unproven
 * node's record over its own swarm key, closed as that node's duplicate,
 * held the node's one entry, and the node's own duplicates went unbanned
 * (they came back every 1 to 3 s again). At most MAX_KEYS_PER_PEER keys
 * are held a node; past that the oldest is released.
 */
/** Swarm keys held under one node's id at most (its own, and strangers' that replayed its record). */
export const MAX_KEYS_PER_PEER = 4;

export class SwarmDuplicates {
  /**
   * Links the handshake is closing as a duplicate, with the node each reached (its "duplicate" event comes
   * just before the close). Marked per link, not for a moment: a remote's own close with the DUPLICATE code
   * on another swarm link, read while a mark of one microtask stood, was taken for ours, and that link's
   * swarm key was banned under the id of whatever node our duplicate belonged to.
   */
  private readonly closing = new WeakMap<Connection, string>();
  /** Peers whose swarm link was closed as a duplicate, by swarm key: the key banned, and the connection closed. */
  private readonly held = new Map<string, Map<string, { info: PeerInfo; closed: Connection }>>();

  constructor(
    private readonly bans: SwarmBans,
    private readonly log: (format: string, ...args: unknown[]) => void,
  ) {}

  /** The handshake is about to close `connection`, a duplicate link to `peer` (any transport). */
  duplicate(peer: string, connection: Connection): void {
    this.closing.set(connection, peer);
  }

  /** A swarm connection to `info` closed with `code`. */
  swarmClosed(connection: Connection, info: PeerInfo, code: number): void {
    const peer = this.closing.get(connection);
    this.closing.delete(connection);
    if (code !== CloseCode.DUPLICATE || peer === undefined) return;
    const key = info.publicKey.toString("hex");
    let keys = this.held.get(peer);
    if (!keys) this.held.set(peer, (keys = new Map()));
    const again = keys.get(key); // held already: its newest close
    if (again) this.bans.release(again.info);
    keys.delete(key);
    if (keys.size >= MAX_KEYS_PER_PEER) {
      const [oldest, entry] = keys.entries().next().value!;
      keys.delete(oldest);
      this.bans.release(entry.info);
    }
    keys.set(key, { info, closed: connection });
    this.bans.hold(info);
    this.log("swarm link to %s closed as a duplicate: not dialed or taken while the kept link stands", peer);
  }

  /** A session closed: when it is the kept link of a held peer, the peer may be linked over Hyperswarm again. */
  sessionClosed(session: PeerSession): void {
    const keys = this.held.get(session.clientId);
    // A held duplicate's own session closing (an existing link replaced) is not the kept link.
    if (!keys || [...keys.values()].some((e) => e.closed === session.connection)) return;
    this.held.delete(session.clientId);
    for (const { info } of keys.values()) this.bans.release(info);
  }

  /** The swarm is closing: nothing is held. */
  clear(): void {
    for (const keys of this.held.values()) for (const { info } of keys.values()) this.bans.release(info);
    this.held.clear();
  }
}
