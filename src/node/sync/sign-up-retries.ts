/**
 * Sign-ups a peer's change feed listed that a sign-up quota that refills refused (StoreQuota.signUpsDeferred). A
 * change-feed run used to hold our checkpoint of the peer before them until the quota refilled, so the peer's later
 * changes waited as long when they came by refresh. Now their item ids wait here, per peer, and the checkpoint moves
 * on: the ids are written to the index store before it does (ChangeFeed `r<peer>`, gone with the checkpoint), and the
 * first run once the quota could take them fetches them again. Those refused again stay, with a new wait; those the
 * peer no longer serves or that are refused for good (a signature, a quota of 0) are dropped: each is fetched again
 * once per refill at most. At most MAX_RETRY_IDS a peer; past that, or when a refusal during the page cannot be told
 * to be one of its sign-ups (a relayed put refused meanwhile), the checkpoint is held as before (PullHolds.hold).
 */
import { LruMap } from "../../base/bounded-set.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { NodeContext } from "../node-context.js";
import { MAX_CHECKPOINTS } from "./change-feed.js";
import type { SyncIndex } from "./sync-index.js";

/** Sign-up ids a peer's retries hold at most: 65 bytes of store each, ~16 KB a peer, ~17 MB for MAX_CHECKPOINTS peers. */
export const MAX_RETRY_IDS = 256;

/** A peer's retries during a run. */
export interface Retries {
  ids: string[];
}

export class SignUpRetries {
  /** Per peer address: when its retries may be fetched again (none known, after a restart: at once). */
  private readonly due = new LruMap<string, number>(MAX_CHECKPOINTS);

  constructor(
    private readonly db: NodeContext,
    private readonly index: SyncIndex,
  ) {}

  /**
   * At a run's start: the peer's retries, those due fetched again first (`lacking`: the ids not stored here; `fetch`:
   * the run's fetch). Those its quota refused again stay; the rest are dropped.
   */
  async begin(session: PeerSession, lacking: (ids: string[]) => Promise<string[]>, fetch: (ids: string[]) => Promise<void>): Promise<Retries> {
    const ids = await this.index.feed.retries(session.address);
    if (ids.length === 0 || this.db.now() < (this.due.get(session.address) ?? 0)) return { ids };
    const since = this.db.quota.signUpsDeferred(session);
    const wanted = await lacking(ids);
    if (wanted.length > 0) await fetch(wanted);
    const again = this.refused(session, wanted, since);
    await this.save(session, again, again.length);
    return { ids: again };
  }

  /**
   * After the fetch of `fetched`, a page of the peer's feed (`since`: StoreQuota.signUpsDeferred before it): its
   * sign-ups refused by a quota that refills join the retries. False when they cannot (too many, or a refusal meanwhile
   * was none of them): the checkpoint is then held before the page.
   */
  async add(session: PeerSession, retries: Retries, fetched: readonly string[], since: number): Promise<boolean> {
    const deferred = this.db.quota.signUpsDeferred(session) - since;
    if (deferred === 0) return true;
    const refused = this.refused(session, fetched, since);
    if (refused.length !== deferred || retries.ids.length + refused.length > MAX_RETRY_IDS) return false;
    retries.ids = [...retries.ids, ...refused];
    await this.save(session, retries.ids, refused.length);
    return true;
  }

  /** Of `ids`, those of the peer's sign-ups its quota refused (one that refills) since its count was `since`. */
  private refused(session: PeerSession, ids: readonly string[], since: number): string[] {
    return ids.filter((id) => this.db.quota.deferredSince(session, id, since));
  }

  /** Writes the peer's retries; `refused` of them were refused just now: due once the quota could take the lot. */
  private async save(session: PeerSession, ids: string[], refused: number): Promise<void> {
    await this.index.feed.setRetries(session.address, ids);
    if (ids.length === 0) this.due.delete(session.address);
    else if (refused > 0) this.due.set(session.address, this.db.now() + this.db.quota.signUpRetryMs(session, ids.length));
  }
}
