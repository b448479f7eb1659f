/**
 * Which records a peer earns link merit (`PeerSession.servedAt`, kept by
 * slot-rotation.ts) by delivering again. A record this node did not hold
 * when it asked always earns it (a newer version: get-replies.ts). One it
 * held earned nothing before, since any peer can echo a record the node
 * holds (its own writes, what it answered a get with): so a client that
 * re-reads keys whose latest version it holds (an app reading its config,
 * profiles) gave an honest server no merit, and fakes holding slots
 * looked the same as the server that answered its reads.
 *
 * A held record earns merit when this node knows no peer got it from here:
 * it is in a bounded set of records that peers delivered as asked (a reply
 * to a read, an update of a key subscribed to or listened to) while new
 * here, and it leaves the set the moment this node sends it to any peer (a
 * get or a subscribe answered, a behind sender answered). The set is
 * node-wide, so fake A asking for X and fake B echoing X earns B nothing.
 *
 * It is an allow-list, not a list of what was handed out, so it fails
 * closed: a record it forgot (past `capacity`, or held from before a
 * restart, or this node's own writes, which never enter it) earns nothing,
 * as before. A list of records handed out failed open: a peer that asked
 * for more records than it holds, or asked in an earlier run, could echo
 * the first ones once they were forgotten.
 *
 * Only clients keep it: servers send every record on (relay, catch-up) and
 * their slots do not rotate on it; their merit stays the rule for records
 * not held, at no cost on their paths. The residual risks are in
 * docs/security.md ("Slots and merit").
 */
import { LruMap } from "../base/bounded-set.js";

/** Records remembered: between this and 2 × this in the map's two generations (a hash is some 150 bytes held). */
export const MERIT_RECORDS = 2048;

export class MeritRecords {
  /** Hashes delivered as asked and new here, never sent to a peer since. */
  private readonly fresh: LruMap<string, true>;

  constructor(capacity = MERIT_RECORDS) {
    this.fresh = new LruMap(capacity);
  }

  /** A peer delivered the record `h` as asked, and it was new here (it earned merit as such). */
  delivered(h: string): void {
    this.fresh.set(h, true);
  }

  /** This node sent the record `h` to a peer: any peer may hold it now. */
  handedOut(h: string): void {
    this.fresh.delete(h);
  }

  /** Whether a peer delivering `h`, which this node held when it asked, earns merit. */
  proves(h: string): boolean {
    return this.fresh.get(h) === true;
  }

  /** Hashes remembered (at most 2 × capacity). */
  get size(): number {
    return this.fresh.size;
  }
}
