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
 * and dropped when the last closes. A link that closed keeps reading the
 * state it joined (its run compares with what it read at its start); what it
 * counts as it closes (a record of it refused after the close) goes to that
 * state and to its address's current one, which another link's run reads.
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
  /** The address's state each link joined. */
  private readonly joined = new WeakMap<PeerLink, T>();

  constructor(private readonly create: () => T) {}

  /** The state of `link`'s peer, to read (created when there is none): its address's for a link that proved it, the link's own otherwise. */
  of(link: PeerLink): T {
    if (!link.provenServer) return this.own(link);
    const joined = this.joined.get(link);
    if (joined !== undefined) return joined;
    const address = link.address;
    const held = this.byAddress.get(address);
    if (link.connection.closed) return held?.state ?? this.own(link);
    const state = held ?? { state: this.create(), links: 0 };
    if (!held) this.byAddress.set(address, state);
    this.joined.set(link, state.state);
    state.links++;
    link.connection.once("close", () => {
      if (--state.links === 0 && this.byAddress.get(address) === state) this.byAddress.delete(address);
    });
    return state.state;
  }

  /** The states a count of `link`'s goes to: `of(link)`, and for a closed link its address's current state too. */
  each(link: PeerLink): T[] {
    const state = this.of(link);
    const current = link.provenServer && link.connection.closed ? this.byAddress.get(link.address)?.state : undefined;
    return current === undefined || current === state ? [state] : [state, current];
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
