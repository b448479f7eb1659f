/**
 * State a server keeps of a peer across its links: by the peer's address
 * (its public key, as the change-feed checkpoints, sign-up retries, quota
 * holds and copy cursors key it: sync/peer-runs.ts) once the link proved it
 * (`provenServer`: the peer signed this session's nonce with that key), by
 * the link otherwise. What a sync run reads of it (sign-ups a quota refused
 * from the peer, records a custom verifier refused) then covers every link
 * to the peer: a refusal of a record that came on another link (two links to
 * one peer, dialed and accepted; a reconnect while the old link closes) let a
 * run move its checkpoint past what it should fetch again, as the run read
 * only its own link's count. A copy of a record on its way in on one link is
 * taken as the same record by the other's intake (dropped before
 * verification), so the refusal was counted on one link only.
 *
 * Why the address cannot be used to poison another peer's state: only a link
 * that proved the address (signed with its key) joins it; a link that merely
 * claims it (a replayed peer record) keeps a state of its own.
 *
 * Bounded by the links open: an address's state is kept while one of its
 * links that joined it is open (a link joins as it first reads or counts),
 * and dropped when the last closes. A closed link (a refusal counted as it
 * closes) counts in its address's state if one is held (another link's run
 * reads it), else in a state of its own.
 */

/** A link as this class sees it (a PeerSession). */
export interface PeerLink {
  readonly address: string;
  readonly provenServer: boolean;
  readonly connection: { readonly closed: boolean; once(event: "close", listener: () => void): unknown };
}

export class PeerKeyed<T> {
  private readonly byLink = new WeakMap<PeerLink, T>();
  private readonly byAddress = new Map<string, { state: T; links: number }>();
  private readonly joined = new WeakSet<PeerLink>();

  constructor(private readonly create: () => T) {}

  /** The state of `link`'s peer (created when there is none): its address's for a link that proved it, the link's own otherwise. */
  of(link: PeerLink): T {
    if (!link.provenServer) return this.own(link);
    const address = link.address;
    let held = this.byAddress.get(address);
    if (link.connection.closed) return held?.state ?? this.own(link);
    if (!held) this.byAddress.set(address, (held = { state: this.create(), links: 0 }));
    if (!this.joined.has(link)) {
      this.joined.add(link);
      held.links++;
      const state = held;
      link.connection.once("close", () => {
        if (--state.links === 0 && this.byAddress.get(address) === state) this.byAddress.delete(address);
      });
    }
    return held.state;
  }

  /** Addresses whose state is held (for tests). */
  get addresses(): number {
    return this.byAddress.size;
  }

  private own(link: PeerLink): T {
    let state = this.byLink.get(link);
    if (state === undefined) this.byLink.set(link, (state = this.create()));
    return state;
  }
}
