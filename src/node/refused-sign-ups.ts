/**
 * Which sign-ups each proven server sent that a quota that refills refused
 * (StoreQuota.signUpRefusal): a range run held by the quota fetches none of
 * them again from that peer (RecordTransfer.fetchQueue), only the peer's
 * other changes, until the quota could take them (PullHolds.hold).
 *
 * Kept by the peer's address (its public key, proven on the link: only
 * proven servers' refusals are added), as the hold, the checkpoints and the
 * copy cursors are, not by the link: keyed by the link, a reconnect (or the
 * peer's other link, dialed and accepted) lost them, and the first held run
 * on the new link fetched them all once more, each verified and refused
 * again. A peer can add entries only under an address whose key it holds,
 * so it cannot make another peer's held runs leave out records.
 *
 * Bounded for the whole server, not per peer: an attacker decides how many
 * sign-ups exist and how many identities say they are servers, so a bound per
 * peer (it was the latest 256 ids a link) is either too small for an honest
 * backlog (a new server that lacks tens of thousands of accounts fetched all
 * but 256 of them again at every held run, each verified and refused again)
 * or, times the peers, too much memory. So the latest REMEMBERED to
 * 2 × REMEMBERED refused sign-ups of all peers together are kept (two
 * generations, as LruMap: one that a held run asks about again is kept
 * longer), each as one 52-bit number (~60 bytes: about 4 MiB at most).
 * Past that the oldest are forgotten: held runs fetch those again, as every
 * run did before the hold, bounded by the peer's sync budget; nothing is
 * lost. So a peer that floods the quota with refused sign-ups (each one a
 * signed record verified here, with its proof of work if `signUpPow` is set)
 * can make other peers' held runs fetch theirs again, but no more than that.
 *
 * The number is the item id's first 52 bits mixed with 52 bits of a keyed
 * digest of the peer's address (SHA-256 under a ~140-bit secret of this
 * process): one peer's entries never match another's ids except by a 1 in
 * 2^52 chance (no address can be chosen to collide with another's without
 * the secret), and a sign-up made to match an honest record's id under its
 * own address (which would leave that record out of the held runs, until the
 * hold ends) takes some 2^52 hashes.
 */
import { LruMap } from "../base/bounded-set.js";
import { sha256Hex } from "../crypto/sha256.js";
import { randomId } from "../base/random.js";

/** Refused sign-ups remembered at least (a generation); at most twice as many. */
export const REMEMBERED = 32_768;

/** Peers whose digest is kept (the rest are hashed again when asked about). */
const DIGESTS = 1024;

export class RefusedSignUps {
  private readonly ids = new LruMap<number, true>(REMEMBERED);
  /** Per peer address, its digest's 52 bits: [high 20, low 32]. */
  private readonly digests = new LruMap<string, [number, number]>(DIGESTS);
  private readonly secret = randomId(24);

  /** The sign-up with item id `id` (hex) from the proven server at `peer` (its address) was refused by a quota that refills. */
  add(peer: string, id: string): void {
    this.ids.set(this.key(peer, id), true);
  }

  /** Whether it is remembered as refused from `peer`. */
  has(peer: string, id: string): boolean {
    return this.ids.get(this.key(peer, id)) !== undefined;
  }

  private key(peer: string, id: string): number {
    let digest = this.digests.get(peer);
    if (!digest) {
      const hex = sha256Hex(`${this.secret}\n${peer}`);
      this.digests.set(peer, (digest = [parseInt(hex.slice(0, 5), 16), parseInt(hex.slice(5, 13), 16)]));
    }
    const [high, low] = digest;
    return ((parseInt(id.slice(0, 5), 16) ^ high) >>> 0) * 2 ** 32 + ((parseInt(id.slice(5, 13), 16) ^ low) >>> 0);
  }
}
