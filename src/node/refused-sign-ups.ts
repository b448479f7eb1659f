/**
 * Which sign-ups each proven server's link sent that a quota that refills
 * refused (StoreQuota.signUpRefusal): a range run held by the quota fetches
 * none of them again from that link (RecordTransfer.fetchQueue), only the
 * peer's other changes, until the quota could take them (PullHolds.hold).
 *
 * Bounded for the whole server, not per link: an attacker decides how many
 * sign-ups exist and how many links say they are servers, so a bound per link
 * (it was the latest 256 ids a link) is either too small for an honest
 * backlog (a new server that lacks tens of thousands of accounts fetched all
 * but 256 of them again at every held run, each verified and refused again)
 * or, times the links, too much memory. So the latest REMEMBERED to
 * 2 × REMEMBERED refused sign-ups of all links together are kept (two
 * generations, as LruMap: one that a held run asks about again is kept
 * longer), each as one 52-bit number (~60 bytes: about 4 MiB at most).
 * Past that the oldest are forgotten: held runs fetch those again, as every
 * run did before the hold, bounded by the peer's sync budget; nothing is
 * lost. So a link that floods the quota with refused sign-ups (each one a
 * signed record verified here, with its proof of work if `signUpPow` is set)
 * can make other links' held runs fetch theirs again, but no more than that.
 *
 * The number is the item id's first 52 bits mixed with the link's serial
 * under a secret of this process: one link's entries never match another's
 * ids except by a 1 in 2^52 chance, and a sign-up made to match an honest
 * record's id on its own link (which would leave that record out of the held
 * runs, until the hold ends) takes some 2^52 hashes.
 */
import { LruMap } from "../base/bounded-set.js";

/** Refused sign-ups remembered at least (a generation); at most twice as many. */
export const REMEMBERED = 32_768;

/** murmur3's 32-bit finalizer: every input bit moves every output bit. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export class RefusedSignUps {
  private readonly ids = new LruMap<number, true>(REMEMBERED);
  private readonly serials = new WeakMap<object, number>();
  private lastSerial = 0;
  private readonly secret = globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!;

  /** The sign-up with item id `id` (hex) from `link` was refused by a quota that refills. */
  add(link: object, id: string): void {
    this.ids.set(this.key(link, id), true);
  }

  /** Whether it is remembered as refused from `link`. */
  has(link: object, id: string): boolean {
    return this.ids.get(this.key(link, id)) !== undefined;
  }

  private key(link: object, id: string): number {
    let serial = this.serials.get(link);
    if (serial === undefined) this.serials.set(link, (serial = ++this.lastSerial));
    const low = mix(serial ^ this.secret);
    const high = mix(low ^ 0x9e3779b9) & 0xfffff;
    return ((parseInt(id.slice(0, 5), 16) ^ high) >>> 0) * 2 ** 32 + ((parseInt(id.slice(5, 13), 16) ^ low) >>> 0);
  }
}
