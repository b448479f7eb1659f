/**
 * Incremental reconciliation over the change feed (capability `chg1`): when
 * both servers hold a checkpoint of the other's feed in its current epoch,
 * the dialing server pulls the ids stored there since its checkpoint, fetches
 * those it lacks, offers its own changes since the checkpoint the peer keeps
 * of it and pushes what the peer lacks, then moves both checkpoints on.
 * Neither side scans its index: the work follows the changes. Otherwise the
 * caller runs full range reconciliation and then `settle`s the checkpoints
 * at the heads both feeds had before it began (anything stored during the
 * run has a later number and comes with the next run).
 */
import { ErrorCode, ToolDbError, errorText } from "../../base/errors.js";
import type { OutgoingMessage, SyncChangesAckMessage, SyncMessage, ToolDbMessage } from "../../records/messages.js";
import { randomId } from "../../base/random.js";
import type { NodeContext } from "../node-context.js";
import type { PeerSession } from "../../network/peer-session.js";
import { type Checkpoint, MAX_CHECKPOINTS } from "./change-feed.js";
import { LruMap } from "../../base/bounded-set.js";
import { retriesAgain } from "../../records/custom-verifiers.js";
import { isRecordShape } from "../../records/record-verifier.js";
import { resolveLimits } from "../../limits/limits.js";
import { type RunTracker, type SyncIndex, itemId } from "./sync-index.js";
import { LISTED_ID_WORK, LOOKUP_WORK } from "./sync-budget.js";
import type { SyncGate } from "./sync-gate.js";
import { SignUpRetries } from "./sign-up-retries.js";
import { PullHolds } from "./pull-holds.js";

export const CHANGES_CAPABILITY = "chg1";
/**
 * Ids the peer's feed listed in a run that are remembered, so that they are
 * not offered back: the peer stored them since our checkpoint (or a newer
 * version of their key). On a link the relay keeps in step, every record
 * either side stored since the last run is in both feeds, and a refresh
 * offered each one back, 8 items of the peer's budget apiece.
 */
const MAX_LISTED = 65_536;
/** What the range sync lends this class: requests on the link, fetching and pushing records. */
export interface SyncOps<Run> {
  request(session: PeerSession, message: OutgoingMessage): Promise<ToolDbMessage | undefined>;
  fetch(session: PeerSession, ids: string[], run: Run): Promise<void>;
  push(session: PeerSession, ids: string[], run: Run): Promise<void>;
}

/** Where the two feeds stand, learned by the first request of a run. */
export interface FeedState {
  /** The peer's numbering and head when the run began. */
  theirs: Checkpoint;
  /** Our numbering and head when the run began, and the last number handed out then. */
  ours: Checkpoint & { last: number };
  /** Our checkpoint of the peer, if valid in its current epoch, and its first page. */
  pulled?: { seq: number; page: SyncChangesAckMessage };
  /** The peer's checkpoint of us, if valid in our current epoch. */
  pushed?: number;
  /** Sign-ups from the peer refused by a quota that refills, when the run began (StoreQuota.signUpsDeferred). */
  deferred: number;
  /** The peer's sign-ups were refused by a quota that has not refilled (`hold`): nothing pulled, our checkpoint of it stays. */
  held?: boolean;
  /** Records from the peer refused by a custom verifier, when the run began (CustomVerifiers.refusals). */
  custom: number;
  /** The run left our checkpoint of the peer before records a custom verifier refused (`keepsPlace`). */
  kept?: boolean;
}

/** Responder side of a run in progress: what the asker pushed is counted, as the initiator counts what it fetched. */
interface Serving {
  tracker: RunTracker;
  head: number;
  last: number;
  /** Sign-ups from the asker refused by a quota that refills, when the run began. */
  deferred: number;
  /** Records from the asker refused by a custom verifier, when the run began. */
  custom: number;
}

export class ChangeSync<Run> {
  private readonly serving = new WeakMap<PeerSession, Serving>();
  /** Links whose close already ends their serving (one listener a link, however many runs it serves). */
  private readonly watched = new WeakSet<PeerSession>();
  private readonly exemptIps: readonly string[];
  /** Where a peer is not pulled from again until its quota refilled (its sign-ups refused): range runs read them too. */
  readonly holds: PullHolds;
  /** Per role and peer address, where a checkpoint was last kept for a custom verifier's refusals (`keepsPlace`). */
  private readonly kept = new LruMap<string, { place: string; times: number; refused: number }>(2 * MAX_CHECKPOINTS);
  /** The peers' sign-ups refused by a quota that refills, fetched again once it refills while their checkpoints move on. */
  private readonly retries: SignUpRetries;

  constructor(
    private readonly db: NodeContext,
    private readonly index: SyncIndex,
    private readonly ops: SyncOps<Run>,
    /** Charged our work on the peer's answers: its feed's listed ids (LISTED_ID_WORK each). */
    private readonly gate: Pick<SyncGate, "chargeAnswers" | "answersRemaining">,
    /** Pages of the peer's feed one run pulls at most; the next run goes on from the checkpoint. */
    private readonly maxPages = 1000,
  ) {
    this.exemptIps = resolveLimits(db.options.limits).exemptIps;
    this.retries = new SignUpRetries(db, index);
    this.holds = new PullHolds(db);
  }

  /** Ids per page: at most the wire's cap, and half a frame (limits/frame-fit.ts). */
  private get pageIds(): number {
    return this.db.frames.idsPerMessage;
  }

  // ---- initiator -------------------------------------------------------

  /** Asks the peer where both feeds stand; undefined when it does not speak chg1. */
  async open(session: PeerSession): Promise<FeedState | undefined> {
    if (!session.caps.has(CHANGES_CAPABILITY)) return undefined;
    const feed = this.index.feed;
    const ours = { epoch: feed.epoch, seq: feed.head, last: feed.lastSeq };
    const known = await feed.checkpoint(session.address);
    const held = known !== undefined && this.holds.heldAt(session, `${known.epoch}:${known.seq}`);
    // Held: asked where the feeds stand without a place, so the peer lists nothing (its page is ours to fill in: empty).
    const page = await this.changes(session, held ? undefined : known);
    const state: FeedState = { theirs: { epoch: page.e, seq: page.head }, ours, deferred: this.db.quota.signUpsDeferred(session), custom: this.refusals(session), ...(held ? { held } : {}) };
    if (known && known.epoch === page.e && known.seq <= page.head) state.pulled = { seq: known.seq, page: held ? { ...page, ids: [], next: known.seq, more: false } : page };
    if (page.mine && page.mine.e === ours.epoch && page.mine.s <= ours.seq) state.pushed = page.mine.s;
    return state;
  }

  /** Both checkpoints valid: the run can go by the feeds alone. */
  canRun(state: FeedState | undefined): state is FeedState & { pulled: object; pushed: number } {
    return state?.pulled !== undefined && state.pushed !== undefined;
  }

  async run(session: PeerSession, state: FeedState & { pulled: { seq: number; page: SyncChangesAckMessage }; pushed: number }, run: Run, tracker: RunTracker): Promise<void> {
    const feed = this.index.feed;
    let page = state.pulled.page;
    let after = state.pulled.seq;
    const listed = new Set<string>();
    const retries = await this.retries.begin(session, (ids) => this.lacking(ids), (ids) => this.ops.fetch(session, ids, run));
    for (let pages = 1; ; pages++) {
      for (const id of page.ids) if (listed.size < MAX_LISTED) listed.add(id);
      // A page that says more must move on: a peer repeating its place would keep the run pulling for ever.
      if (page.more && page.next <= after) throw new ToolDbError(ErrorCode.SYNC_FAILED, "the peer's change feed made no progress");
      // Each listed id is looked up here: charged as our work on the peer's answers, a page at a time while it lasts (a
      // liar listing ids without end made a run look up ~4 million). The checkpoint is at the last page taken in.
      if (page.ids.length > 0) this.affordable(session, pages - 1);
      this.gate.chargeAnswers(session, LISTED_ID_WORK * page.ids.length);
      const [refused, deferred, wanted] = [this.refusals(session), this.db.quota.signUpsDeferred(session), await this.lacking(page.ids)];
      await this.ops.fetch(session, wanted, run);
      // Its sign-ups refused by a quota that refills wait in the retries; when they cannot, the checkpoint is held before them.
      if (!(await this.retries.add(session, retries, wanted, deferred))) {
        this.holds.hold(session, deferred, `${state.theirs.epoch}:${after}`);
        break;
      }
      const refusedHere = this.refusals(session) - refused;
      if (!state.kept && refusedHere > 0) state.kept = this.keepsPlace(`pull ${session.address}`, `${state.theirs.epoch}:${after}`, refusedHere);
      if (!state.kept) await this.setCheckpoint(session, { epoch: state.theirs.epoch, seq: page.next });
      if (!page.more) break;
      if (pages >= this.maxPages) throw new ToolDbError(ErrorCode.SYNC_FAILED, `pulled ${pages} pages of the peer's change feed; the next run goes on`);
      after = page.next;
      this.affordable(session, pages);
      page = await this.changes(session, { epoch: state.theirs.epoch, seq: after });
      if (page.e !== state.theirs.epoch) throw new ToolDbError(ErrorCode.SYNC_FAILED, "peer's feed restarted during the run");
    }
    after = state.pushed;
    while (after < state.ours.seq) {
      const mine = await feed.page(after, this.pageIds, state.ours.seq);
      const ids = mine.ids.filter((id) => !listed.has(id));
      if (ids.length > 0) {
        const offer = await this.ops.request(session, { type: "syncOffer", id: randomId(), ids });
        if (offer?.type !== "syncOfferAck" || offer.error) throw new ToolDbError(ErrorCode.SYNC_FAILED, offer ? `peer refused offer: ${offer.type === "syncOfferAck" ? offer.error : "unexpected reply"}` : "no offer ack");
        const offered = new Set(ids);
        await this.ops.push(session, offer.ids.filter((id) => offered.has(id)), run);
      }
      if (mine.next <= after) break;
      after = mine.next;
    }
    await this.commit(session, { epoch: state.ours.epoch, seq: after < state.ours.seq ? after : this.reached(state, tracker) }, state);
    if (!state.kept) this.kept.delete(`pull ${session.address}`);
  }

  /**
   * After a complete full reconciliation: both checkpoints at the heads noted before it began (ours past what the run
   * fetched). Throws when either was not written (our store, the peer refused the commit, the link dropped): the run is
   * then not complete, and its log says why.
   */
  async settle(session: PeerSession, state: FeedState, tracker: RunTracker): Promise<void> {
    try {
      const refused = this.refusals(session) - state.custom;
      if (refused > 0) state.kept = this.keepsPlace(`pull ${session.address}`, "full", refused);
      if (!this.deferredSignUps(session, state) && !state.kept && !state.held) await this.setCheckpoint(session, state.theirs);
      if (!state.kept && !state.held) this.kept.delete(`pull ${session.address}`);
      await this.commit(session, { epoch: state.ours.epoch, seq: this.reached(state, tracker) }, state);
    } catch (err) {
      throw new ToolDbError(ErrorCode.SYNC_FAILED, `settling the checkpoints failed: ${errorText(err)}`);
    }
  }

  /** Throws once the budget for our work on the peer's answers is used up (before a page is asked for, and before it is looked up). */
  private affordable(session: PeerSession, pages: number): void {
    if (this.gate.answersRemaining(session) < 1) throw new ToolDbError(ErrorCode.SYNC_FAILED, `sync budget (scans) for this peer used up after ${pages} page(s) of its change feed; the next run goes on`);
  }

  /**
   * How far the peer holds our feed after a run: our head when the run began,
   * or our head now when every number handed out since went to a record the
   * run fetched from this very peer (it need not be offered back).
   */
  private reached(state: FeedState, tracker: RunTracker): number {
    const feed = this.index.feed;
    const onlyFetched = state.ours.seq === state.ours.last && feed.head === feed.lastSeq && feed.lastSeq - state.ours.last === tracker.added;
    return onlyFetched ? feed.lastSeq : state.ours.seq;
  }

  private async changes(session: PeerSession, since: Checkpoint | undefined): Promise<SyncChangesAckMessage> {
    const reply = await this.ops.request(session, { type: "syncChanges", id: randomId(), ...(since ? { e: since.epoch, s: since.seq } : {}) });
    if (reply?.type !== "syncChangesAck") throw new ToolDbError(ErrorCode.SYNC_FAILED, reply ? "unexpected reply to syncChanges" : "no changes reply");
    if (reply.error) throw new ToolDbError(ErrorCode.SYNC_FAILED, `peer refused changes: ${reply.error}`);
    return reply;
  }

  /** Sets the peer's checkpoint of us; the peer may answer that our checkpoint of it can move past what we pushed. */
  private async commit(session: PeerSession, cp: Checkpoint, state: FeedState): Promise<void> {
    const reply = await this.ops.request(session, { type: "syncCommit", id: randomId(), e: cp.epoch, s: cp.seq });
    if (reply?.type !== "syncCommitAck" || reply.error) throw new ToolDbError(ErrorCode.SYNC_FAILED, reply ? "peer refused the checkpoint" : "no commit ack");
    if (reply.e === undefined || reply.s === undefined || state.held || state.kept || this.deferredSignUps(session, state)) return;
    const feed = this.index.feed;
    const known = await feed.checkpoint(session.address);
    if (known && known.epoch === reply.e && known.seq < reply.s) await this.setCheckpoint(session, { epoch: reply.e, seq: reply.s });
  }

  /**
   * Sign-ups from the peer were refused during the run by a quota that
   * refills: our checkpoint of its feed stays before them (the last page
   * stored in full, or where it was), so a later run fetches them again.
   */
  private deferredSignUps(session: PeerSession, state: FeedState): boolean {
    return this.db.quota.signUpsDeferred(session) > state.deferred;
  }

  /** Records from `session` a custom verifier refused so far. */
  private refusals(session: PeerSession): number {
    return this.db.customVerifiers.refusals(session);
  }

  /**
   * A custom verifier refused `refused` records of the peer's feed during a run: one whose verdict depends on order (a
   * post needs its user stored) refuses a record the run brought before its dependency. True: the checkpoint stays at
   * `place`, before them, so the next run fetches them again (their dependency stored by then). Kept there again while
   * each run from it is refused fewer (it stored one more link of a chain), at most ORDER_RETRIES times (`retriesAgain`);
   * then false: refused as often again, they are refused for good and the checkpoint moves on (a verifier that always
   * refuses does not stall the feed). `key`: the role (pull, push) and the peer's address.
   */
  private keepsPlace(key: string, place: string, refused: number): boolean {
    const kept = this.kept.get(key);
    const here = kept?.place === place ? kept : undefined;
    if (!retriesAgain(here?.times ?? 0, refused, here?.refused)) return false;
    this.kept.set(key, { place, times: (here?.times ?? 0) + 1, refused });
    this.db.log("change feed (%s): %d records refused by a custom verifier; the checkpoint stays at %s for one more run", key, refused, place);
    return true;
  }

  /**
   * Our checkpoint of the peer's feed, in the table by the IP it linked from (exempt IPs stand alone). Never once the
   * link closed: the intake lets a dropped link's records go unstored, silently (frame-intake.ts), and a run whose fetch
   * returned so moved the checkpoint past them; the next link's run went on from there without them. Never backwards
   * within an epoch, whichever side's run writes it (ChangeFeed.setCheckpoint).
   */
  private async setCheckpoint(session: PeerSession, cp: Checkpoint): Promise<void> {
    if (session.connection.closed) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
    const ip = session.host;
    return this.index.feed.setCheckpoint(session.address, cp, this.db.now(), ip && !this.exemptIps.includes(ip) ? ip : undefined);
  }

  /** The ids whose items this node does not hold. */
  private async lacking(ids: string[]): Promise<string[]> {
    const held = await Promise.all(ids.map((id) => this.index.keyOf(id)));
    return ids.filter((_, i) => held[i] === undefined);
  }

  // ---- responder -------------------------------------------------------

  /** Answers a change-feed request; returns its work in index items read (charged to the peer): entries listed, LOOKUP_WORK an id looked up. */
  async answer(message: SyncMessage, from: PeerSession): Promise<number> {
    const feed = this.index.feed;
    if (message.type === "syncChanges") {
      this.startServing(from);
      const mine = await feed.checkpoint(from.address);
      const valid = message.e === feed.epoch && message.s !== undefined;
      const page = valid ? await feed.page(message.s!, this.pageIds) : { ids: [], next: 0, more: false };
      this.reply(from, { type: "syncChangesAck", id: message.id, e: feed.epoch, head: feed.head, ...page, ...(mine ? { mine: { e: mine.epoch, s: mine.seq } } : {}) });
      return page.ids.length + 1;
    }
    if (message.type === "syncOffer") {
      this.reply(from, { type: "syncOfferAck", id: message.id, ids: await this.lacking(message.ids) });
      return LOOKUP_WORK * message.ids.length;
    }
    if (message.type === "syncCommit") {
      const serving = this.serving.get(from);
      // A commit ends a run this link began with syncChanges (every run does): none behind it, none stored.
      // What stops strangers' commits pushing out the checkpoints of servers that synced is the table's share per IP and range (change-feed.ts).
      if (!serving) {
        this.reply(from, { type: "syncCommitAck", id: message.id, error: "no change-feed run on this link" });
        return 1;
      }
      // Sign-ups it pushed were refused by a quota that refills: our checkpoint of it stays, so our next run fetches them.
      // So does a custom verifier's refusal, once at the same place (`keepsPlace`): it may have depended on order.
      const refused = this.refusals(from) - serving.custom;
      const place = refused > 0 ? await feed.checkpoint(from.address) : null;
      const kept = place !== null && this.keepsPlace(`push ${from.address}`, place ? `${place.epoch}:${place.seq}` : "none", refused);
      if (this.db.quota.signUpsDeferred(from) === serving.deferred && !kept) await this.setCheckpoint(from, { epoch: message.e!, seq: message.s! });
      if (!kept) this.kept.delete(`push ${from.address}`);
      this.stopServing(from);
      // All we stored since the run began came from the asker's pushes: it may skip them next time.
      const onlyPushed = serving && serving.head === serving.last && feed.head === feed.lastSeq && feed.lastSeq - serving.last === serving.tracker.added;
      this.reply(from, { type: "syncCommitAck", id: message.id, ...(onlyPushed ? { e: feed.epoch, s: feed.lastSeq } : {}) });
    }
    return 1;
  }

  /** Ids of pushed records about to be merged, counted for the asker's run; pass them to `pushed` after. */
  pushing(from: PeerSession, records: unknown[]): string[] {
    const tracker = this.serving.get(from)?.tracker;
    if (!tracker) return [];
    const ids = records.filter(isRecordShape).map(itemId);
    for (const id of ids) tracker.expect(id);
    return ids;
  }

  pushed(from: PeerSession, ids: string[]): void {
    this.serving.get(from)?.tracker.settled(ids);
  }

  private startServing(from: PeerSession): void {
    if (this.serving.has(from)) return;
    const feed = this.index.feed;
    this.serving.set(from, { tracker: this.index.track(), head: feed.head, last: feed.lastSeq, deferred: this.db.quota.signUpsDeferred(from), custom: this.refusals(from) });
    if (this.watched.has(from)) return;
    this.watched.add(from);
    from.connection.once("close", () => this.stopServing(from));
  }

  private stopServing(from: PeerSession): void {
    this.serving.get(from)?.tracker.stop();
    this.serving.delete(from);
  }

  private reply(to: PeerSession, message: OutgoingMessage): void {
    if (!to.connection.closed && !this.db.isClosed) to.send(message);
  }
}
