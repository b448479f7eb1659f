/**
 * Range-based reconciliation between tooldb-dht servers over the ToolDb link
 * (the `rbsr1` wire extension): the dialing server runs negentropy over
 * both stores' (timestamp, id) indexes, pushes the records the other side
 * lacks and fetches those it lacks, batch by batch, each verified and
 * merged as any put. Memory per run is bounded by a few messages; work a
 * peer causes is bounded by the SyncGate; no frame passes the limit. A run
 * a dropped link interrupts runs again on the next link.
 */
import { base64FromBytes, base64ToBytes } from "../../crypto/encoding.js";
import { ErrorCode, ToolDbError, errorText, isToolDbError } from "../../base/errors.js";
import type { SyncMessage } from "../../records/messages.js";
import { randomId } from "../../base/random.js";
import type { NodeContext } from "../node-context.js";
import { TypedEmitter } from "../../base/typed-emitter.js";
import type { PeerSession } from "../../network/peer-session.js";
import { runWindow } from "./message-window.js";
import { RequestLanes } from "./request-lanes.js";
import { StoredRecords } from "./stored-records.js";
import { SYNC_REQUEST_TIMEOUT_MS, SyncRequests } from "./sync-requests.js";
import { Reconciler } from "./negentropy.js";
import { Turns } from "./negentropy-bounds.js";
import type { InitiatorMessage } from "./negentropy-resume.js";
import type { RangeSyncEvents, RangeSyncRun } from "./range-sync-run.js";
import { LinkReadBudget, baseReadsPerMessage, maxReadsPerMessage, timedBuilds } from "./link-read-budget.js";
import { ChangeSync } from "./change-sync.js";
import { DEFAULT_SYNC_BUDGET, type RangeSyncOptions } from "./sync-budget.js";
import { SyncGate, errorReply } from "./sync-gate.js";
import { resolveLimits } from "../../limits/limits.js";
import { type SyncIndex, itemId } from "./sync-index.js";
import { isRecordShape } from "../../records/record-verifier.js";
import { StoreCopy } from "./store-copy.js";
import { PeerRuns } from "./peer-runs.js";
import { RecordTransfer, linkGone } from "./record-transfer.js";
import { FrontierRun, RangeFrontiers } from "./range-frontier.js";

export const RBSR_CAPABILITY = "rbsr1";
/** Sync messages that answer a request of ours. */
const REPLIES = new Set(["syncRangeAck", "syncRecords", "syncPushAck", "syncChangesAck", "syncOfferAck", "syncCommitAck"]);
/** Reconciliation messages in flight per run: the peer compares one while we work on the reply to another. */
const RANGES_IN_FLIGHT = 3;
/** Sync requests from one link waiting to be answered, per lane (pushes; everything else); more is a flood. */
const MAX_QUEUED_PER_LINK = 8;
/**
 * Leaves of the reconciliation: see RangeSyncOptions.leafIds. 8, not the reference's 32: at 1 % divergence of 1,000,000
 * records the bytes both ways fell from 3.25 to 2.20 × the differing records, and at 10 % from 2.98 to 1.80 × in 26
 * rounds instead of 44 (npm run bench -- sync, same box).
 */
const LEAF_IDS = 8;
export type { RangeSyncOptions } from "./sync-budget.js";
export type { RangeSyncEvents, RangeSyncRun } from "./range-sync-run.js";

export class RangeSync extends TypedEmitter<RangeSyncEvents> {
  /** Who may reconcile here and at what cost; how much we push to whom. */
  readonly gate: SyncGate;
  private readonly maxRounds: number;
  private readonly leafIds: number;
  private readonly baseReads: number | undefined;
  /** Requests from a link, answered in order: pushes in a lane of their own (request-lanes.ts). */
  private readonly lanes = new RequestLanes<PeerSession>(MAX_QUEUED_PER_LINK);
  private readonly running = new WeakSet<PeerSession>();
  private readonly changes: ChangeSync<RangeSyncRun>;
  private readonly stored: StoredRecords;
  /** Our records pushed, the peer's fetched: for ranges and change feeds alike. */
  private readonly transfer: RecordTransfer;
  private readonly requests: SyncRequests;
  private readonly copy: StoreCopy;
  private readonly peers = new PeerRuns();
  /** Where range runs that stopped short left off, by peer address (range-frontier.ts). */
  readonly frontiers = new RangeFrontiers(() => this.db.now());

  constructor(
    private readonly db: NodeContext,
    readonly index: SyncIndex,
    options: RangeSyncOptions = {},
  ) {
    super();
    const budget = { ...DEFAULT_SYNC_BUDGET, ...options.budget };
    this.gate = new SyncGate(budget, resolveLimits(db.options.limits), () => db.now(), () => index.size, (s) => s.provenServer);
    this.maxRounds = options.maxRounds ?? 1000;
    this.leafIds = options.leafIds ?? LEAF_IDS;
    this.baseReads = options.readsPerMessage;
    if (this.baseReads !== undefined && !(Number.isSafeInteger(this.baseReads) && this.baseReads >= 1)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "rangeSync.readsPerMessage must be a positive integer");
    this.requests = new SyncRequests(db.options.clock);
    this.stored = new StoredRecords(index, db.store, () => db.frames.maxRecordBytes, db.log);
    const parts = { db, index, gate: this.gate, requests: this.requests, stored: this.stored };
    this.transfer = new RecordTransfer(parts);
    this.changes = new ChangeSync(db, index, {
      request: (session, message) => this.requests.ask(session, message),
      fetch: (session, ids, run) => this.transfer.fetch(session, ids, run),
      push: (session, ids, run) => this.transfer.push(session, ids, run),
    }, this.gate, this.maxRounds);
    this.copy = new StoreCopy(parts, this.maxRounds);
  }

  /** Ends the waits of runs in progress (the node closes). */
  close(): void {
    this.requests.close();
  }

  // ---- initiator -------------------------------------------------------

  /**
   * Reconciles with `session` (a server that speaks rbsr1). One run per link at a time, and one per peer address
   * (peer-runs.ts): a run on another link to the same peer waits for it (`waiting` is told while it does).
   */
  async run(session: PeerSession, waiting?: (on: boolean) => void): Promise<RangeSyncRun | undefined> {
    if (this.running.has(session)) return undefined;
    this.running.add(session);
    const run: RangeSyncRun = { peer: session.clientId, complete: false, mode: "range", rounds: 0, pushed: 0, fetched: 0, rangeBytesOut: 0, rangeBytesIn: 0, recordBytesOut: 0 };
    const tracker = this.index.track();
    this.transfer.track(run, tracker);
    let release: (() => void) | undefined; // this run's claim on the peer's address
    try {
      await this.index.open();
      release = await this.peers.acquire(session, waiting);
      if (this.gone(session)) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
      const feeds = await this.changes.open(session);
      if (this.changes.canRun(feeds)) {
        run.mode = "changes";
        await this.changes.run(session, feeds, run, tracker);
        run.complete = true;
      } else {
        // A copy begun on an empty store holds all the peer held when the run began; the change feeds bring the rest.
        // A copy the peer refuses (its budget, keys it cannot name) gives way to ranges: the run is not stuck at it for good.
        // Its sign-ups refused by a quota, by the copy too: not fetched again until it refills (PullHolds.rangeHeld).
        const pull = this.changes.holds.rangePull(session, feeds);
        let whole = false;
        const complete = await (async () => {
          const end = (await this.copy.wanted(session)) && (await this.copy.run(session, run, tracker).catch((err: unknown) => (isToolDbError(err, ErrorCode.SYNC_REFUSED) ? undefined : Promise.reject(err))));
          // A run whose copy went to the end of the peer's store is a copy, resumed or not; ranges follow all but a whole one.
          if (end) run.mode = "copy";
          whole = end === "whole" && feeds !== undefined;
          return whole || (await this.reconcile(session, run, this.changes.holds.rangeHeld(session, pull)));
        })().finally(() => this.changes.holds.rangeEnded(session, pull));
        // The intake lets a dropped link's records go unstored: not complete then, and no checkpoint is settled.
        if (complete && this.gone(session)) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
        if (complete && !whole) await this.copy.forget(session);
        // Complete once both checkpoints are written: a run whose settle threw reported itself complete (review).
        if (complete && feeds) await this.changes.settle(session, feeds, tracker);
        run.complete = complete;
      }
    } catch (err) {
      run.reason = errorText(err);
    } finally {
      tracker.stop();
      this.running.delete(session);
      this.gate.runEnded(session, run.complete, run.pushed);
      release?.();
    }
    let kind = !run.resumed ? run.mode : run.mode === "copy" ? "copy, resumed" : `${run.mode}, after a resumed copy`;
    if (run.resumedRanges) kind += `, from ${run.resumedRanges} ranges where the last run stopped`;
    this.db.log("range sync with %s: %s (%s), %d rounds, %d pushed, %d fetched%s", run.peer, run.complete ? "complete" : "incomplete", kind, run.rounds, run.pushed, run.fetched, run.reason ? ` (${run.reason})` : "");
    if (!this.db.isClosed) this.emit("done", run);
    return run;
  }

  /**
   * Full range reconciliation (negentropy); true when it ran to the end.
   * RANGES_IN_FLIGHT messages go out at once, so the peer compares one while
   * we work on the reply to another: one after the other, each side sat idle
   * half of a run at 10 % divergence of 1,000,000 records.
   */
  private async reconcile(session: PeerSession, run: RangeSyncRun, held: boolean): Promise<boolean> {
    const base = this.baseReads ?? baseReadsPerMessage(this.index.cacheCapacity, this.index.size, RANGES_IN_FLIGHT);
    const budget = new LinkReadBudget(base, maxReadsPerMessage(base, this.index.size), RANGES_IN_FLIGHT);
    const reconciler = new Reconciler(this.index, this.db.frames.rangeMessageBytes, true, this.leafIds, base);
    // A run that stopped short resumes from where it left off with this peer, then checks the whole set (range-frontier.ts).
    const frontier = new FrontierRun(this.frontiers, session.address, reconciler);
    if (frontier.resumed > 0) run.resumedRanges = frontier.resumed;
    const builds = timedBuilds(async () => frontier.built(await reconciler.next()), () => reconciler.turns.waitedMs);
    const fetches = this.transfer.fetchQueue(session, run, held, frontier.moved);
    const pushes = this.transfer.pushQueue(session, run, frontier.moved); // our records the peer lacks go in the background too
    // Our work on the peer's answers is charged to its dialer-side buckets (SyncGate.chargeAnswers): answers that keep us comparing use them up.
    let charged = 0;
    const charge = () => {
      this.gate.chargeAnswers(session, reconciler.work - charged);
      run.work = charged = reconciler.work;
    };
    reconciler.turns = new Turns(charge); // a large reply is taken in (a message built) a turn of TURN_MS at a time, charged as each ends
    const answering = new Set<Promise<void>>(); // exchanges sent, their replies not yet taken in and their needs queued
    // Once the budget is used up and no credit is on its way (fetches of what earlier replies held), a reply being taken in
    // stops at a turn's end, and so do those after it (taken in whole, the replies in flight cost 2.1-2.6 × the budget).
    let spent = false;
    const affordable = async () => {
      if (!spent && this.gate.answersRemaining(session) < 1) await fetches.drain().catch(() => undefined); // a failed fetch: the run's error
      if ((spent ||= this.gate.answersRemaining(session) < 1)) throw usedUp();
    };
    const exchange = async (out: InitiatorMessage) => {
      if (this.gone(session)) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
      charge();
      // Records on their way in, and those the replies in flight ask for, may earn the peer some of it back (NEW_RECORD_CREDIT):
      // checked before the replies in flight were taken in, honest runs stopped by how the replies happened to interleave.
      if (this.gate.answersRemaining(session) < 1) await Promise.allSettled(answering).then(() => fetches.drain());
      if (this.gate.answersRemaining(session) < 1) throw usedUp();
      const through = (async () => {
        const m = base64FromBytes(out.message);
        run.rangeBytesOut += m.length;
        const sent = performance.now();
        const reply = await this.requests.ask(session, { type: "syncRange", id: randomId(), m });
        if (reply?.type !== "syncRangeAck") throw new ToolDbError(ErrorCode.SYNC_FAILED, reply ? "unexpected reply" : "no reply");
        if (reply.error) throw new ToolDbError(ErrorCode.SYNC_FAILED, `peer refused: ${reply.error}`);
        run.rangeBytesIn += reply.m.length;
        run.rounds++;
        if (reply.n !== undefined) this.gate.answersSized(session, reply.n); // its store's size, as it says
        const replied = performance.now(), waited = reconciler.turns.waitedMs; // our own time on it leaves the waits out
        if (spent) throw usedUp();
        const result = await reconciler
          .take(base64ToBytes(reply.m), out, reconciler.turns.checked(affordable))
          .catch((err: unknown) => {
            if (!isToolDbError(err, ErrorCode.SYNC_FAILED)) this.db.network.strikePeer(session, ErrorCode.BAD_MESSAGE, `bad reconciliation reply: ${errorText(err)}`);
            throw err;
          })
          .finally(charge);
        frontier.taken(out, result.lists);
        reconciler.readsPerMessage = budget.observe(replied - sent, reply.ms, performance.now() - replied - (reconciler.turns.waitedMs - waited) + builds.tookMs(out));
        run.readsPerMessage = Math.max(run.readsPerMessage ?? 0, reconciler.readsPerMessage);
        // Fetches and pushes go on in the background while further rounds are asked for.
        await Promise.all([pushes.add(result.have), fetches.add(result.need)]);
      })();
      answering.add(through);
      await through.finally(() => answering.delete(through));
    };
    try {
      const settle = () => Promise.all([fetches.drain(), pushes.drain()]);
      for (let m = await frontier.first(builds.next), sent = 0; m; m = sent < this.maxRounds ? await frontier.check(builds.next, settle) : undefined) {
        sent += await runWindow(m, { next: builds.next, exchange, width: RANGES_IN_FLIGHT, maxMessages: this.maxRounds - sent });
      }
      await settle();
    } catch (err) {
      // No merge or push of this run goes on after it reported.
      await Promise.all([fetches.drain().catch(() => undefined), pushes.drain().catch(() => undefined)]);
      run.savedRanges = frontier.ended(false, err) || undefined;
      throw err;
    } finally {
      charge();
    }
    const complete = reconciler.pendingRanges === 0 && frontier.whole;
    run.savedRanges = frontier.ended(complete) || undefined;
    if (!complete) run.reason = `stopped after ${run.rounds} rounds`;
    return complete;
  }

  private gone = (session: PeerSession): boolean => linkGone(this.db, session);

  // ---- responder -------------------------------------------------------

  /**
   * A sync message from a peer: replies go to the waiting run, requests are
   * answered in order per link. For a push, resolves once its records were
   * taken in: the link's intake weighs it until then, as it weighs puts.
   */
  handle(message: SyncMessage, from: PeerSession): Promise<void> | undefined {
    if (REPLIES.has(message.type)) {
      this.requests.resolve(message.id, message, from);
      return undefined;
    }
    const unproven = this.gate.unproven(from);
    if (unproven) {
      this.refuse(from, message, unproven);
      return undefined;
    }
    const lane = message.type === "syncPush" ? "push" : "requests";
    const queuedAt = this.db.now();
    const queued = this.lanes.enqueue(from, lane, () => {
      // Its asker stopped waiting (a slow store held the queue): no work for nobody.
      if (this.db.now() - queuedAt > SYNC_REQUEST_TIMEOUT_MS) return Promise.resolve();
      return this.answer(message, from).catch((err: unknown) => {
        if (this.db.isClosed) return;
        if (isToolDbError(err, ErrorCode.BAD_MESSAGE)) {
          this.db.network.strikePeer(from, ErrorCode.BAD_MESSAGE, err.message);
          this.reply(from, message, "malformed request");
        } else this.db.log("sync request from %s failed: %s", from.clientId, errorText(err));
      });
    });
    // Answered at once, not struck: an honest asker whose earlier requests timed out while still
    // queued here would otherwise collect strikes for its next run's; its run ends and backs off.
    if (!queued) this.refuse(from, message, "too many sync requests in flight on this link");
    return lane === "push" ? queued : undefined;
  }

  private reply(to: PeerSession, request: SyncMessage, error: string): void {
    if (!this.gone(to)) to.send(errorReply(request, error));
  }

  /** A request not answered: reported, and the asker told why (so its run ends at once). */
  private refuse(from: PeerSession, request: SyncMessage, reason: string): void {
    this.db.refused({ code: ErrorCode.SYNC_REFUSED, reason, peer: from.clientId, host: from.host, port: from.port });
    this.reply(from, request, reason);
  }

  private async answer(message: SyncMessage, from: PeerSession): Promise<void> {
    const started = performance.now(); // a range reply says how long it took (link-read-budget.ts)
    if (this.gone(from)) return;
    const refusal = this.gate.refusal(from, message);
    if (refusal && this.gate.keepsAsking(from)) {
      this.db.network.strikePeer(from, ErrorCode.SYNC_REFUSED, `kept asking after its requests were refused: ${refusal}`);
      return this.reply(from, message, refusal);
    }
    if (refusal) return this.refuse(from, message, refusal);
    await this.index.open();
    if (message.type === "syncPush") {
      // Merged as fetched records are (a bounded number at a time), and always acknowledged: on a
      // storage failure the pusher learns it at once instead of waiting out its request.
      const ids = this.changes.pushing(from, message.records);
      const added = this.index.track(true); // pushed records new here earn the pusher credit (NEW_RECORD_CREDIT)
      for (const id of message.records.filter(isRecordShape).map(itemId)) added.expect(id);
      try {
        await this.db.acceptFrame(message.records, from, () => undefined);
      } catch (err) {
        this.reply(from, message, "the push could not be stored");
        throw err;
      } finally {
        added.stop();
        this.changes.pushed(from, ids);
      }
      this.gate.newRecords(from, added.keys);
      if (!this.gone(from)) from.send({ type: "syncPushAck", id: message.id, records: [] });
      return;
    }
    if (message.type === "syncRange") {
      const reconciler = new Reconciler(this.index, this.db.frames.rangeMessageBytes, false, this.leafIds);
      let charged = 0; // charged as each turn of the answer ends too: another link's request meanwhile sees it
      const charge = (work: number) => {
        this.gate.charge(from, "scans", work - charged);
        charged = work;
      };
      const turns = new Turns(() => charge(reconciler.work));
      try {
        // The answer stops (as at the frame limit) once it did the work the asker's budget had left.
        const { output } = await reconciler.reconcile(base64ToBytes(message.m), this.gate.remaining(from, "scans"), turns);
        const ms = Math.round(performance.now() - started - turns.waitedMs); // our own time on it (link-read-budget.ts)
        if (!this.gone(from)) from.send({ type: "syncRangeAck", id: message.id, m: base64FromBytes(output!), ms, n: this.index.size });
        this.gate.answeredRange(from, message.m);
      } finally {
        // Items read and ranges decoded, compared and written: an empty range costs a fingerprint too.
        this.gate.charge(from, "rounds", 1);
        charge(reconciler.work);
      }
    } else if (message.type === "syncFetch") {
      await this.stored.serve(message.id, message.ids, from, this.gate, this.db.frames.recordBudget);
    } else if (message.type === "syncCopy") {
      await this.copy.serve(message, from);
    } else {
      const scanned = await this.changes.answer(message, from);
      this.gate.charge(from, "rounds", 1);
      this.gate.charge(from, "scans", scanned);
    }
  }
}
const usedUp = () => new ToolDbError(ErrorCode.SYNC_FAILED, "sync budget (scans) for this peer used up");
