/**
 * A new server's first catch-up as a copy of its peer's store (capability
 * `copy1`): while our index is empty, we ask for the peer's records in its
 * store's key order, a frame at a time (`syncCopy` with the last key we got,
 * answered by `syncRecords` with `next`), instead of reconciling ranges and
 * fetching every id. The peer reads its store in order (no fingerprints, no
 * id -> key -> record lookups: two random reads a record saved) and we send
 * it no id lists. Every record still goes through the intake (verified,
 * merged last-writer-wins); range reconciliation runs after the copy and
 * picks up what changed on either side meanwhile.
 *
 * Strangers: a copy is served only to proven servers, charged to the same
 * budgets as fetches (`serves` a record sent, `scans` a record read and not
 * sent), so a copy costs a peer what fetching the same records would. The
 * asker bounds what a liar can make it do: a cursor that does not move
 * forward is struck and ends the copy, pages per run are capped, each page
 * and each record not new here are charged to the peer's dialer-side
 * budget, a few pages that bring nothing new end the copy (ranges follow),
 * and the copy of a peer that stops halfway is resumed at its cursor by the
 * next run, after a restart of this server too (copy-cursors.ts: saved in the
 * sync index store once its pages were taken in). One copy of a peer's
 * address runs at a time, whatever its links, as every sync run does
 * (peer-runs.ts): two saved the shared cursor, one past pages the other had not stored.
 */
import { ErrorCode, ToolDbError } from "../../base/errors.js";
import { randomId } from "../../base/random.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { OutgoingMessage, SyncCopyMessage } from "../../records/messages.js";
import { isCopyCursor } from "../../records/parse-message.js";
import { isRecordShape } from "../../records/record-verifier.js";
import { utf8Length } from "../../limits/frame-fit.js";
import { compareCodePoints } from "../../base/text-formats.js";
import type { NodeContext } from "../node-context.js";
import { CopyCursors } from "./copy-cursors.js";
import type { RangeSyncRun } from "./range-sync-run.js";
import { LOOKUP_WORK } from "./sync-budget.js";
import type { RunTracker, SyncIndex } from "./sync-index.js";
import type { SyncParts } from "./sync-parts.js";

export const COPY_CAPABILITY = "copy1";
/** Pages taken in at once while the next is asked for: the intake verifies one while the link carries the next. */
const PAGES_IN_FLIGHT = 3;
/** Records one copy page holds at most (the wire's cap on a records frame). */
const MAX_PAGE_RECORDS = 4096;
/** Entries a page reads from the store at first; then as many as the room left takes at the mean size read. */
const FIRST_READ = 4;
/** A page of at least this many records, fewer than half of them new here, ends the copy (ranges follow). */
const HELD_PAGE_MIN = 16;
/**
 * Pages of a run that brought nothing new here (empty, or fewer than half of their records new) after which the copy
 * ends and ranges follow. An honest page is empty only at the store's end or after a run of entries that are no records
 * (read past as the budget allows), so an honest copy hardly meets one; a liar paging empty pages with a cursor that
 * moves on kept a new server asking for `maxRounds` pages a run, run after run at the cursor it left, at no cost to
 * itself, and one padding each page with records we hold, below HELD_PAGE_MIN, did the same for a record a page (review).
 */
const BARREN_PAGES = 3;
/**
 * Pages of a copy resumed at a cursor that neither end it as held nor count as barren: the cursor is saved once a page
 * was taken in, so the pages taken in after it (the intake in flight, the save after it, a link that dropped before
 * it) may be here already, and one page of records held gave way to ranges over the whole store. A liar gains little
 * by them: they are asked for once a run that resumes, and charged as any page.
 */
const RESUMED_GRACE_PAGES = PAGES_IN_FLIGHT + 1;

/**
 * How a copy went: `whole`, begun at the start of the peer's store on an empty one and gone to its end (every record
 * the peer held is here); `end`, gone to its end from a cursor (or over records held here: ranges follow); undefined,
 * stopped before its end (ranges bring the rest).
 */
export type CopyEnd = "whole" | "end" | undefined;

export class StoreCopy {
  /** Where an unfinished copy stopped, by the peer's address: in memory, and saved for a restart. */
  private readonly cursors: CopyCursors;

  private readonly db: NodeContext;
  private readonly index: SyncIndex;
  private readonly gate: SyncParts["gate"];
  private readonly requests: SyncParts["requests"];
  private readonly stored: SyncParts["stored"];

  constructor(
    parts: SyncParts,
    /** Pages one run asks for at most; the next run goes on from the cursor. */
    private readonly maxPages: number,
  ) {
    ({ db: this.db, index: this.index, gate: this.gate, requests: this.requests, stored: this.stored } = parts);
    this.cursors = new CopyCursors(this.index.store, () => this.db.now(), this.db.log);
  }

  /** True when a run with `session` should copy first: our store is empty, or a copy from this peer stopped halfway (in this run of the server or before a restart). */
  async wanted(session: PeerSession): Promise<boolean> {
    if (!session.caps.has(COPY_CAPABILITY)) return false;
    return this.index.size === 0 || (await this.cursors.get(session.address)) !== undefined;
  }

  /** A run reconciled every range with the peer: a copy of it stopped halfway has nothing left to bring. */
  forget(session: PeerSession): Promise<void> {
    return this.cursors.forget(session.address);
  }

  // ---- asker -------------------------------------------------------------

  /**
   * Copies the peer's store into ours, page by page; throws when the peer
   * refuses, lies or the link drops. The caller holds the peer's address (PeerRuns).
   * `whole` when the copy began at the start of the peer's store with ours
   * empty and went to its end: every record the peer held when it began is
   * here (or was refused by our intake); `end` when it went to the end from
   * a cursor (`run.resumed`) or over records held here.
   */
  async run(session: PeerSession, run: RangeSyncRun, tracker: RunTracker): Promise<CopyEnd> {
    const peer = session.address;
    // An empty store copies from the start, whatever a cursor says (records store wiped: none of it is here).
    let after = this.index.size === 0 ? undefined : await this.cursors.get(peer);
    const fresh = after === undefined && this.index.size === 0;
    if (after !== undefined) run.resumed = true;
    const grace = after !== undefined ? RESUMED_GRACE_PAGES : 0;
    const intake = new Set<Promise<void>>();
    let failure: unknown;
    // A page most of whose records were already here: another run (a copy of another server begun on the same empty
    // store) brought them, and copying the rest spent the peer's budget on records we hold (review): ranges instead.
    let held = false;
    let barren = 0;
    // Saves each page's cursor once it and every page before it were taken in with the link up (copy-cursors.ts).
    let saving = Promise.resolve();
    const take = (records: unknown[], page: number, next: string | undefined) => {
      const taken = this.take(records, session, run, tracker)
        .then((added) => {
          // Let go unstored with the dropped link, not barren: counted so, they forgot the cursor the next run resumes at.
          if (session.connection.closed) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
          if (page < grace) return;
          const few = 2 * added < records.length;
          held ||= records.length >= HELD_PAGE_MIN && few;
          if (few || added === 0) barren++;
        })
        .catch((err: unknown) => void (failure ??= err));
      intake.add(taken);
      void taken.finally(() => intake.delete(taken));
      if (next !== undefined) {
        saving = saving.then(() => taken).then(() => (failure === undefined && !session.connection.closed ? this.cursors.save(peer, next) : undefined));
      }
    };
    try {
      for (let page = 0; page < this.maxPages && !held && barren < BARREN_PAGES; page++) {
        if (failure !== undefined) throw failure;
        if (session.connection.closed) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
        if (this.gate.answersRemaining(session) < 1) await Promise.allSettled(intake);
        if (this.gate.answersRemaining(session) < 1) throw new ToolDbError(ErrorCode.SYNC_FAILED, "sync budget (scans) for this peer used up");
        const request: OutgoingMessage = { type: "syncCopy", id: randomId(), ...(after === undefined ? {} : { after }) };
        const reply = await this.requests.ask(session, request);
        if (reply?.type !== "syncRecords") throw new ToolDbError(ErrorCode.SYNC_FAILED, reply ? "unexpected reply to copy" : "no records");
        // Refused (its budget, or keys it cannot name as a cursor): the run reconciles ranges instead (RangeSync.run).
        if (reply.error) throw new ToolDbError(ErrorCode.SYNC_REFUSED, `peer refused copy: ${reply.error}`);
        run.rounds++;
        const next = reply.next;
        // In the store's order (code points, as LevelDB's bytes): by UTF-16 units "a\uE000" < "a\u{10000}" went back, an honest peer struck.
        if (next !== undefined && after !== undefined && compareCodePoints(next, after) <= 0) {
          this.db.network.strikePeer(session, ErrorCode.BAD_MESSAGE, "a store copy's cursor went back");
          throw new ToolDbError(ErrorCode.SYNC_FAILED, "the peer's copy cursor did not move forward");
        }
        take(reply.records, page, next);
        while (intake.size >= PAGES_IN_FLIGHT) await Promise.race(intake);
        if (next === undefined) {
          await Promise.all(intake);
          if (failure !== undefined) throw failure;
          // The intake lets the records of a dropped link go unstored, silently: a copy that looked complete then
          // settled our checkpoint of the peer past records we never got (review).
          if (session.connection.closed) throw new ToolDbError(ErrorCode.SYNC_FAILED, "link closed");
          await saving;
          await this.cursors.forget(peer);
          return fresh ? "whole" : "end";
        }
        after = next;
      }
      await Promise.all(intake);
      await saving;
      if (failure !== undefined) throw failure;
      if (held || barren >= BARREN_PAGES) {
        await this.cursors.forget(peer); // the ranges that follow bring the rest; the next run does not resume here
        if (!held) this.db.log("store copy from %s: %d pages brought nothing new, ranges instead", session.clientId, barren);
      }
      return undefined;
    } catch (err) {
      await Promise.allSettled(intake);
      await saving;
      throw err;
    }
  }

  /** Takes one page in as fetched records are: verified and merged; records new here earn the peer credit, others (and the page) cost it. */
  private async take(records: unknown[], session: PeerSession, run: RangeSyncRun, tracker: RunTracker): Promise<number> {
    const ids: string[] = [];
    for (const record of records) if (isRecordShape(record)) ids.push(this.index.idFor(record));
    const added = this.index.track(true);
    for (const id of ids) {
      tracker.expect(id);
      added.expect(id);
    }
    try {
      await this.db.acceptFrame(records, session, () => run.fetched++, false);
    } finally {
      added.stop();
      tracker.settled(ids);
    }
    if (added.added > 0) run.copied = (run.copied ?? 0) + added.added;
    this.gate.chargeAnswers(session, LOOKUP_WORK * (records.length - added.added + 1));
    this.gate.newRecords(session, added.keys);
    return added.added;
  }

  // ---- responder -----------------------------------------------------------

  /**
   * One page of our store after `after`, in key order: the records that fit a
   * frame (with the `next` that names the last of them), at most `serves` of
   * them, reading at most the `scans` left. `next` is the last key read
   * (absent once the store's end was reached). The store is read a few
   * entries at a time, as many as the room left is likely to take: read a
   * store page (1,000 entries) at a time, a page of 64 KiB records made the
   * store load 64 MB to send 1 MiB (review). Every entry read and not sent
   * is charged as `scans` (LOOKUP_WORK each), the one that did not fit too,
   * and so is each read begun (a seek): a page of nothing was free (review).
   */
  async serve(message: SyncCopyMessage, to: PeerSession): Promise<void> {
    const serves = Math.min(MAX_PAGE_RECORDS, Math.floor(this.gate.remaining(to, "serves")));
    const scans = Math.floor(this.gate.remaining(to, "scans") / LOOKUP_WORK);
    const budget = this.db.frames.recordBudget;
    // The frame around the records, and `next` after them: a cursor of 1,024 control characters is 6 KB of JSON, more
    // than the envelope leaves, and a full page with it was a frame over the limit, never sent (review).
    const head = `{"type":"syncRecords","id":${JSON.stringify(message.id)},"to":[],"records":[`;
    const room = this.db.frames.maxFrameBytes - utf8Length(head) - 2;
    const tailBytes = (key: string) => utf8Length(`,"next":${JSON.stringify(key)}`);
    const raws: string[] = [];
    let size = 0;
    let read = 0;
    let chunkBytes = 0;
    let next: string | undefined;
    let tail = 0;
    let end = false;
    let from = message.after;
    let want = FIRST_READ;
    let seeks = 0;
    chunks: for (;;) {
      const limit = Math.min(MAX_PAGE_RECORDS, Math.max(1, want));
      seeks++;
      let got = 0;
      chunkBytes = 0;
      for await (const page of this.db.store.rangePages({ ...(from === undefined ? {} : { gt: from }), limit })) {
        for (const [key, raw] of page) {
          got++;
          read++;
          chunkBytes += raw.length;
          if (raws.length >= serves || read - 1 - raws.length >= scans) break chunks;
          const bytes = this.stored.sendable(raw);
          const sendable = bytes !== undefined && this.stored.isRecordOf(key, raw);
          // A key too long to be a cursor (stored by an older version) is read past, not named.
          const keyTail = isCopyCursor(key) ? tailBytes(key) : tail;
          const added = sendable ? bytes + 1 : 0;
          if (size + added > budget || size + added + keyTail > room) break chunks;
          from = key;
          if (isCopyCursor(key)) [next, tail] = [key, keyTail];
          if (sendable) {
            raws.push(raw);
            size += added;
          }
        }
      }
      if (got < limit) {
        end = true;
        break;
      }
      // As many entries as the room left takes at the mean size of the last read (not of all: a few large records,
      // then small ones, took a read of the store per record).
      want = Math.ceil((budget - size) / Math.max(1, chunkBytes / got));
    }
    this.gate.charge(to, "serves", raws.length);
    this.gate.charge(to, "scans", LOOKUP_WORK * (read - raws.length + seeks));
    if (to.connection.closed) return;
    if (!end && (next === undefined || next === message.after)) {
      // Nothing read past the cursor (a budget used up, or only keys too long to name): the asker reconciles instead.
      to.send({ type: "syncRecords", id: message.id, records: [], error: "no copy page within this peer's budget" });
      return;
    }
    to.sendFrame(`${head}${raws.join(",")}]${end ? "" : `,"next":${JSON.stringify(next)}`}}`, "syncRecords");
  }
}
