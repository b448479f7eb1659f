/**
 * Which linked servers a client has reason to trust with its writes (the
 * outbox lets a write go only once one of them confirmed it: outbox.ts).
 * Proving a fresh key and saying "server" costs a stranger nothing, and a
 * fake that acknowledges puts and drops them took the write out of the
 * outbox: a write confirmed only by fakes was lost once the client closed
 * before a real server was linked (range sync carries nothing from
 * clients). Trusted is a server:
 *
 * - the operator listed: the node's `peers`, or a list a peering adds
 *   (a DHT peering's bootstrap list, a server selection's `addServer`), on
 *   a link this node dialed to that host and port;
 * - or one whose link earned merit: it delivered a record this client
 *   asked for and did not hold (or held, never handed out: merit-records.ts),
 *   `PeerSession.servedAt`, the evidence link rotations go by.
 *
 * Merit can be earned by a fake that relays a real server's records
 * (docs/security.md); it costs the fake a real server's data, not only a
 * fresh key.
 */
import type { PeerSession } from "../network/peer-session.js";

/** What the trust rules read of a link. */
export type TrustedLink = Pick<PeerSession, "host" | "port" | "outgoing" | "servedAt">;

export class ServerTrust {
  private readonly lists = new Set<(link: TrustedLink) => boolean>();

  constructor(private readonly peers: ReadonlyArray<{ host: string; port: number }>) {}

  /** Adds a list of servers the operator gave (a predicate over links); returns its removal. */
  addList(listed: (link: TrustedLink) => boolean): () => void {
    this.lists.add(listed);
    return () => void this.lists.delete(listed);
  }

  /** Whether the operator listed the server at the other end of `link` (a link this node dialed). */
  listed(link: TrustedLink): boolean {
    if (!link.outgoing || link.host === undefined) return false;
    if (this.peers.some((p) => p.host === link.host && p.port === link.port)) return true;
    for (const listed of this.lists) if (listed(link)) return true;
    return false;
  }

  /** Whether a confirmation from `link` lets a write leave the outbox: listed, or the link earned merit. */
  trusts(link: TrustedLink): boolean {
    return link.servedAt > 0 || this.listed(link);
  }
}
