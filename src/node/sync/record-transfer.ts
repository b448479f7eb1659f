/**
 * The records a run moves, split from range-sync.ts: ours the peer lacks
 * pushed a frame at a time (each acknowledged before the next), and the
 * peer's we lack fetched a few requests at a time and merged as any put.
 * Each fetch counts what it adds against its run's tracker.
 */
import { ErrorCode, ToolDbError } from "../../base/errors.js";
import { randomId } from "../../base/random.js";
import { MAX_IDS_PER_FETCH } from "../../limits/frame-fit.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { NodeContext } from "../node-context.js";
import { IdQueue, askAgain } from "./id-queue.js";
import type { RangeSyncRun } from "./range-sync-run.js";
import { LOOKUP_WORK } from "./sync-budget.js";
import type { RunTracker, SyncIndex } from "./sync-index.js";
import type { SyncParts } from "./sync-parts.js";

/** Fetches in flight per run (ids per fetch: FrameFit.idsPerFetch). */
const FETCHES_IN_FLIGHT = 3;
/** Ids waiting to be fetched before the next round waits for room (bounds memory, keeps verification busy). */
const MAX_QUEUED_FETCHES = 16 * MAX_IDS_PER_FETCH;
/** Ids of ours waiting to be pushed before the next round waits for room (one frame in flight, acked before the next). */
const MAX_QUEUED_PUSHES = 4 * MAX_IDS_PER_FETCH;
/** Ids read and framed per push batch (each frame is still cut to the frame budget). */
const PUSH_BATCH_IDS = MAX_IDS_PER_FETCH;

/** The link dropped or the node closed: a run stops, an answer is not sent. */
export const linkGone = (db: Pick<NodeContext, "isClosed">, session: PeerSession): boolean => session.connection.closed || db.isClosed;

export class RecordTransfer {
  /** Per run: counts the items its own fetches add. */
  private readonly trackers = new WeakMap<RangeSyncRun, RunTracker>();

  private readonly db: NodeContext;
  private readonly index: SyncIndex;
  private readonly gate: SyncParts["gate"];
  private readonly requests: SyncParts["requests"];
  private readonly stored: SyncParts["stored"];

  constructor(parts: SyncParts) {
    ({ db: this.db, index: this.index, gate: this.gate, requests: this.requests, stored: this.stored } = parts);
  }

  /** The fetches of `run` count what they add on `tracker`. */
  track(run: RangeSyncRun, tracker: RunTracker): void {
    this.trackers.set(run, tracker);
  }

  /** Pushes for one run: in the background, one acknowledged frame at a time, bounded ids waiting (`done`: told the ids each push delivered). */
  pushQueue(session: PeerSession, run: RangeSyncRun, done?: (ids: readonly string[]) => void): IdQueue {
    return new IdQueue((ids) => this.push(session, ids, run).then(() => (done?.(ids), [])), PUSH_BATCH_IDS, 1, MAX_QUEUED_PUSHES);
  }

  /**
   * Fetches for one run: a few requests in flight, bounded ids waiting. While
   * a sign-up quota hold is on the peer (`held`: PullHolds.rangeHeld), the
   * sign-ups the quota refused from this link (those it remembers:
   * refused-sign-ups.ts) are not asked for again, each to be verified and
   * refused again; the rest are: the peer's other changes do not wait for the refill. `done`: told the ids each
   * fetch settled (taken in, or not served; not those to ask for again).
   */
  fetchQueue(session: PeerSession, run: RangeSyncRun, held = false, done?: (ids: readonly string[]) => void): IdQueue {
    const asked = held ? (ids: string[]) => ids.filter((id) => !this.db.quota.refusedFrom(session, id)) : (ids: string[]) => ids;
    return new IdQueue(
      async (ids) => {
        const wanted = asked(ids);
        const again = wanted.length === 0 ? [] : await this.fetchBatch(session, wanted, run);
        const left = new Set(again);
        done?.(left.size === 0 ? ids : ids.filter((id) => !left.has(id)));
        return again;
      },
      this.db.frames.idsPerFetch,
      FETCHES_IN_FLIGHT,
      MAX_QUEUED_FETCHES,
    );
  }

  /** Sends our records for `ids`, a frame at a time, each batch acknowledged before the next. */
  async push(session: PeerSession, ids: string[], run: RangeSyncRun): Promise<void> {
    const reader = this.stored.read(ids);
    let carry: { raw: string; bytes: number } | undefined; // the record that did not fit the last frame
    let done = false;
    while (!done || carry !== undefined) {
      const raws: string[] = carry === undefined ? [] : [carry.raw];
      let size = carry === undefined ? 0 : carry.bytes + 1;
      carry = undefined;
      for (;;) {
        const next = await reader.next();
        if (next.done) {
          done = true;
          break;
        }
        const raw = next.value;
        if (raw === undefined) continue;
        const bytes = this.stored.sendable(raw);
        if (bytes === undefined) continue;
        if (size + bytes + 1 > this.db.frames.recordBudget) {
          carry = { raw, bytes };
          break;
        }
        raws.push(raw);
        size += bytes + 1;
      }
      if (raws.length === 0) return;
      if (linkGone(this.db, session)) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
      if (this.gate.pushAllowance(session) < raws.length) throw new ToolDbError(ErrorCode.SYNC_FAILED, "push budget for this peer used up");
      this.gate.pushed(session, raws.length);
      const id = randomId();
      const frame = `{"type":"syncPush","id":"${id}","to":[],"records":[${raws.join(",")}]}`;
      run.recordBytesOut += frame.length;
      run.pushed += raws.length;
      const ack = await this.requests.ask(session, undefined, id, { frame, type: "syncPush" });
      if (ack?.type !== "syncPushAck") throw new ToolDbError(ErrorCode.SYNC_FAILED, ack ? "unexpected reply to push" : "no push ack");
      if (ack.error) throw new ToolDbError(ErrorCode.SYNC_FAILED, `peer refused push: ${ack.error}`);
    }
  }

  /** Asks for the records behind `ids` and merges them (the change feed's catch-up). */
  async fetch(session: PeerSession, ids: string[], run: RangeSyncRun): Promise<void> {
    const fetches = this.fetchQueue(session, run);
    await fetches.add(ids).finally(() => fetches.drain());
  }

  /** Asks for the records behind `ids` and merges them; resolves the ids to ask for again. */
  private async fetchBatch(session: PeerSession, ids: string[], run: RangeSyncRun): Promise<string[]> {
    if (linkGone(this.db, session)) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
    const reply = await this.requests.ask(session, { type: "syncFetch", id: randomId(), ids });
    if (reply?.type !== "syncRecords") throw new ToolDbError(ErrorCode.SYNC_FAILED, reply ? "unexpected reply to fetch" : "no records");
    if (reply.error) throw new ToolDbError(ErrorCode.SYNC_FAILED, `peer refused fetch: ${reply.error}`);
    // The ids asked for, not ids from the records: a record sent unasked is not the run's own (a checkpoint stays back: safe).
    const tracker = this.trackers.get(run);
    for (const id of tracker ? ids : []) tracker!.expect(id);
    const served = this.index.track(true); // the ids asked for whose records the frame added: new to us
    for (const id of ids) served.expect(id);
    await this.db.acceptFrame(reply.records, session, () => run.fetched++).finally(() => served.stop());
    tracker?.settled(ids);
    const again = askAgain(ids, reply.more);
    // An id the peer listed, then neither served (a copy we held does not count) nor put under `more`, cost us its asking
    // (as in serve); a record new here earns back some of our work on the peer's answers (NEW_RECORD_CREDIT).
    this.gate.chargeAnswers(session, LOOKUP_WORK * Math.max(0, ids.length - served.added - again.length));
    this.gate.newRecords(session, served.keys);
    return again;
  }
}
