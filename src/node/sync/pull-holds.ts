/**
 * Quota holds on pulling from a peer, split from change-sync.ts: where its sign-ups fetched were refused by a quota that
 * refills, the peer is not pulled from again until it could take them. Keyed by the peer's address, as its checkpoint.
 */
import { LruMap } from "../../base/bounded-set.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { NodeContext } from "../node-context.js";
import { MAX_CHECKPOINTS } from "./change-feed.js";

/**
 * Where a peer is not pulled from again until a time: its sign-ups fetched there were refused by a quota that refills.
 * `place`: "<epoch>:<seq>", our checkpoint of its feed (change-feed runs), or FULL (range runs).
 */
interface Hold {
  place: string;
  until: number;
}
/** The place of a hold on range runs: no checkpoint to hold, the whole pull waits. */
const FULL = "full";

/** A run by ranges (a store copy, reconciliation): its feed state, and the peer's sign-ups refused before it (`rangePull`). */
export interface RangePull {
  readonly state: PullState | undefined;
  readonly deferred: number;
}

/** What a hold reads and marks of a run's feed state (change-sync.ts FeedState). */
export interface PullState {
  /** Sign-ups from the peer refused by a quota that refills, when the run began. */
  deferred: number;
  /** A hold is on the peer: nothing pulled, our checkpoint of it stays. */
  held?: boolean;
}

export class PullHolds {
  /** Per peer address, as many as the checkpoints it is about. */
  private readonly holds = new LruMap<string, Hold>(MAX_CHECKPOINTS);

  constructor(private readonly db: Pick<NodeContext, "quota" | "now" | "log">) {}

  /**
   * The run's pull met sign-ups refused by a quota that refills (more than `deferred`, the count when it began) that it
   * could not leave to the retries (SignUpRetries.add: too many, or a refusal it cannot place): the peer is not pulled
   * from again at `place` until the quota could take them (its refill; a bucket's capacity at most). A change-feed run's
   * checkpoint stays there, before them; a range run (FULL) sets none. The refreshes between fetched the refused
   * sign-ups again (their records read, sent and verified) to refuse them again. Later changes of the peer wait as long
   * (its relay still brings what is written), as every change of the peer does for a range run's hold.
   */
  hold(session: PeerSession, deferred: number, place: string): void {
    const refused = this.db.quota.signUpsDeferred(session) - deferred;
    const ms = refused > 0 ? this.db.quota.signUpRetryMs(session, refused) : 0;
    if (ms <= 0) return;
    this.holds.set(session.address, { place, until: this.db.now() + ms });
    this.db.log("sync with %s: %d sign-ups refused by a quota; not pulled again from %s for %d ms", session.clientId, refused, place, ms);
  }

  /** A hold is on the peer at `place` (its quota has not refilled since). */
  heldAt(session: PeerSession, place: string): boolean {
    const hold = this.holds.get(session.address);
    return hold !== undefined && hold.place === place && this.db.now() < hold.until;
  }

  /** Before a run by ranges (a store copy first, maybe): pass it to `rangeHeld` before the reconciliation, `rangeEnded` after. */
  rangePull(session: PeerSession, state: PullState | undefined): RangePull {
    return { state, deferred: state?.deferred ?? this.db.quota.signUpsDeferred(session) };
  }

  /**
   * Whether the range reconciliation is held: a hold is on the peer (`hold`: a range run's, set by the copy before it
   * too, or one at our checkpoint of its feed when the peer holds no valid one of ours). It then fetches no sign-up the
   * quota refused from the link (RecordTransfer.fetchQueue; the rest it fetches) and settles no checkpoint of the peer
   * (`state.held`). Before, a copy's refusals held nothing: the ranges after it fetched and verified them all again.
   */
  rangeHeld(session: PeerSession, pull: RangePull): boolean {
    this.rangeEnded(session, pull);
    const held = pull.state?.held === true || this.heldAt(session, FULL);
    if (held && pull.state) pull.state.held = true;
    return held;
  }

  /** A copy or range run is over (complete or not): its sign-ups refused by a quota that refills hold the next ones (`hold`). */
  rangeEnded(session: PeerSession, pull: RangePull): void {
    this.hold(session, pull.deferred, FULL);
  }
}
