/**
 * Where a range reconciliation that stopped short left off, by the peer's
 * address (its public key, as the copy cursors and change-feed checkpoints
 * are keyed), so that the next run with that peer goes on from there
 * instead of splitting the whole set from the top again.
 *
 * Why: a run's rounds go about breadth first and records move only at the
 * last level, so a run the budget stops (the responder's allowance for us,
 * or ours for its answers), a dropped link or `maxRounds` spent its work
 * on the upper levels; run again from the top it spends the same work
 * there again and may never reach the records (measured with a small
 * budget: 9 runs moved 4, 4, 0, 4, 4, 0, 0, 372 and 2,572 of 9,500).
 *
 * The frontier is the ranges not yet settled when the run stopped: the
 * pending ranges of the replies taken in (to be split again: the peer's
 * fingerprints are not kept), the ranges of our messages whose replies
 * were not taken in whole (sent again as they were), and the id lists
 * whose records did not all move (a run the responder's budget stops has
 * its last fetches refused: sent again as id lists). The next run with the
 * peer sends those first. Then, as it has only looked where the frontier
 * said, it checks the whole set once its fetches and pushes settled: one
 * fingerprint of [0, ∞), split from the top where it differs, as any run.
 * It completes only when that ends as a run from the top would: every
 * range found equal or its ids exchanged.
 *
 * Why it is safe:
 * - it only says where to look first. Ranges found equal before the stop
 *   may differ now (records written since on either side, a fetch that a
 *   dropped link lost, a peer that lied about a range), and the whole-set
 *   check after the frontier finds them: a run resumed from a frontier
 *   completes on exactly the condition a run from the top does.
 * - a peer cannot widen it: every range in it lies inside a range we sent
 *   (checkReply), so a liar can make a frontier no larger than the runs it
 *   could already cost us; a run ended by a bad message keeps none.
 * - bounded: MAX_FRONTIER_RANGES ranges a peer (past that, neighbouring
 *   ranges are merged into ones that cover them and are split again, so
 *   nothing is left out), MAX_FRONTIERS peers (least recently saved go),
 *   each taken at the start of a run (one run per peer address at a time:
 *   peer-runs.ts) and dropped after FRONTIER_MAX_AGE_MS, or when a run
 *   completes. Held in memory only: a restart starts from the top.
 */
import { ErrorCode, isToolDbError } from "../../base/errors.js";
import { LruMap } from "../../base/bounded-set.js";
import { INFINITY_BOUND, MIN_BOUND, Mode, compareBounds } from "./negentropy-codec.js";
import type { Reconciler } from "./negentropy.js";
import type { InitiatorMessage, SentRange, TakenReply, WorkItem } from "./negentropy-resume.js";

/** Ranges kept of one peer's frontier at most: two bounds each, ~300 bytes at most (an id prefix of up to 64 hex digits each). */
export const MAX_FRONTIER_RANGES = 512;
/** Peers whose frontier is kept (an LruMap: up to twice as many for a while): ~2.5 MB at most in all. */
export const MAX_FRONTIERS = 8;
/** A frontier older than this is dropped: a run stopped short is retried within a minute, and a budget refills within 10. */
export const FRONTIER_MAX_AGE_MS = 30 * 60_000;

interface Saved {
  at: number;
  items: WorkItem[];
}

export class RangeFrontiers {
  private readonly saved = new LruMap<string, Saved>(MAX_FRONTIERS);

  constructor(private readonly now: () => number) {}

  /** A run with `peer` begins: its frontier, if one was saved and has not expired (taken: saved again only if this run stops short too). */
  take(peer: string): WorkItem[] | undefined {
    const saved = this.saved.get(peer);
    this.saved.delete(peer);
    return saved && this.now() - saved.at <= FRONTIER_MAX_AGE_MS ? saved.items : undefined;
  }

  /** Where a run with `peer` stopped: `items` in order, disjoint. Returns the ranges kept. */
  save(peer: string, items: WorkItem[]): number {
    if (items.length === 0) {
      this.saved.delete(peer);
      return 0;
    }
    const kept = coarsen(items, MAX_FRONTIER_RANGES);
    this.saved.set(peer, { at: this.now(), items: kept });
    return kept.length;
  }

  /** The frontier held for `peer`, left in place (tests). */
  peek(peer: string): readonly WorkItem[] | undefined {
    return this.saved.get(peer)?.items;
  }

  forget(peer: string): void {
    this.saved.delete(peer);
  }

  /** Peers whose frontier is held (tests). */
  get size(): number {
    return this.saved.size;
  }
}

/**
 * One run's frontier: where it starts (a saved frontier, or the top), the messages whose ranges are not settled yet,
 * and what it saves when it stops short.
 */
export class FrontierRun {
  /** Messages built whose replies were not taken in whole: sent again as they were. */
  private readonly outstanding = new Set<InitiatorMessage>();
  /**
   * The id lists of replies taken in whose records did not all move yet (fetched or pushed; a run the budget stops has
   * its last fetches refused): by id, and how many of each list's ids are left. Sent again as id lists.
   */
  private readonly moving = new Map<string, SentRange>();
  private readonly left = new Map<SentRange, number>();
  private readonly resumedFrom: WorkItem[] | undefined;
  private checked = false;

  constructor(
    private readonly frontiers: RangeFrontiers,
    private readonly peer: string,
    private readonly reconciler: Reconciler,
  ) {
    this.resumedFrom = frontiers.take(peer);
    // Stopped at (or before) the whole-set check: this run's frontier is that check.
    const only = this.resumedFrom?.length === 1 ? this.resumedFrom[0]! : undefined;
    this.checked = only !== undefined && isWhole(only);
  }

  /** Ranges of the saved frontier this run began with (0: from the top). */
  get resumed(): number {
    return this.resumedFrom?.length ?? 0;
  }

  /** Whether the run has looked at the whole set: it began from the top, or made the whole-set check (it may complete). */
  get whole(): boolean {
    return !this.resumedFrom || this.checked;
  }

  /** Notes a message built (and about to be sent). */
  built<M extends InitiatorMessage | undefined>(message: M): M {
    if (message) this.outstanding.add(message);
    return message;
  }

  /** The reply to `message` was taken in whole; `lists`: its id lists that differed, settled once their records moved. */
  taken(message: InitiatorMessage, lists: TakenReply["lists"]): void {
    this.outstanding.delete(message);
    for (const { ids, ...range } of lists) {
      for (const id of ids) this.moving.set(id, range);
      this.left.set(range, ids.length);
    }
  }

  /** Records fetched or pushed (or settled otherwise: not served, held back by a quota). */
  moved = (ids: readonly string[]): void => {
    for (const id of ids) {
      const range = this.moving.get(id);
      if (!range || !this.moving.delete(id)) continue;
      const left = (this.left.get(range) ?? 1) - 1;
      if (left > 0) this.left.set(range, left);
      else this.left.delete(range);
    }
  };

  /** The run's first message: the saved frontier's ranges (as many as fit), or the whole set split from the top. */
  async first(next: () => Promise<InitiatorMessage | undefined>): Promise<InitiatorMessage | undefined> {
    if (!this.resumedFrom) return this.built(await this.reconciler.start());
    this.reconciler.pending = this.resumedFrom.slice();
    return this.built(await next()) ?? this.check(next);
  }

  /**
   * Once a resumed run's frontier is done: the whole-set check (one fingerprint of [0, ∞), split where it differs),
   * as ranges found equal before may differ now; made once `settle` (the fetches and pushes under way) resolved, so
   * that it does not find their records missing again. Undefined when there is nothing more to do: a run from the top,
   * the check already made, or ranges still pending (a run stopped by `maxRounds`).
   */
  async check(next: () => Promise<InitiatorMessage | undefined>, settle?: () => Promise<unknown>): Promise<InitiatorMessage | undefined> {
    if (!this.resumedFrom || this.checked || this.reconciler.pendingRanges > 0) return undefined;
    this.checked = true;
    await settle?.();
    this.reconciler.pending = [{ kind: "resend", lower: MIN_BOUND, upper: INFINITY_BOUND, mode: Mode.Fingerprint }];
    return this.built(await next());
  }

  /** The run ended: complete (nothing kept), or stopped short by `err` (undefined: `maxRounds`). Returns the ranges saved. */
  ended(complete: boolean, err?: unknown): number {
    // A run a bad message ended keeps nothing: the next one starts from the top.
    if (complete || (err !== undefined && !isToolDbError(err, ErrorCode.SYNC_FAILED))) {
      this.frontiers.forget(this.peer);
      return 0;
    }
    const items: WorkItem[] = this.reconciler.pending.map((item) => (item.kind === "input" ? { kind: "input", lower: item.lower, upper: item.upper, mode: Mode.Fingerprint } : item));
    for (const message of this.outstanding) for (const range of message.sent) items.push({ kind: "resend", ...range });
    for (const range of this.left.keys()) items.push({ kind: "resend", ...range });
    return this.frontiers.save(this.peer, disjoint(items));
  }
}

const isWhole = (item: WorkItem): boolean => compareBounds(item.lower, MIN_BOUND) === 0 && compareBounds(item.upper, INFINITY_BOUND) === 0;

/**
 * `items` in order and disjoint, as a message must carry them: a range inside another (a pending range of a reply
 * whose message is sent again) goes, ranges that overlap become one covering both, split again when resumed.
 */
export function disjoint(items: WorkItem[]): WorkItem[] {
  items.sort((a, b) => compareBounds(a.lower, b.lower) || compareBounds(b.upper, a.upper));
  const out: WorkItem[] = [];
  for (const item of items) {
    const last = out[out.length - 1];
    if (!last || compareBounds(item.lower, last.upper) >= 0) out.push(item);
    else if (compareBounds(item.upper, last.upper) > 0) out[out.length - 1] = { kind: "input", lower: last.lower, upper: item.upper, mode: Mode.Fingerprint };
  }
  return out;
}

/** `items` (in order, disjoint) as at most `max` ranges: runs of neighbours merged into one range covering them, split again when resumed. */
export function coarsen(items: WorkItem[], max: number): WorkItem[] {
  if (items.length <= max) return items;
  const per = Math.ceil(items.length / max);
  const out: WorkItem[] = [];
  for (let i = 0; i < items.length; i += per) {
    const last = items[Math.min(items.length, i + per) - 1]!;
    out.push({ kind: "input", lower: items[i]!.lower, upper: last.upper, mode: Mode.Fingerprint });
  }
  return out;
}
