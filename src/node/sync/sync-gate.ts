/**
 * Who may reconcile with this server, and what it may cost. Reconciliation
 * (range sync, fetches, change feeds, pushes) copies the store, so:
 *
 * - it is answered only on links whose server identity was proven in this
 *   session (`PeerSession.provenServer`); anyone else is refused;
 * - its work is charged to the asker's identity, its IP and its address
 *   range (/24, /64) at once (SyncBudget): a fresh identity, or the next
 *   address of the range, buys nothing;
 * - a request identical to one answered for the same source within
 *   `repeatWindowMs` is refused instead of answered again;
 * - the pushing side is bounded too: records this server pushes to a peer
 *   are charged to the same three buckets (one copy of the store per
 *   window), and a peer that took pushes and then dropped the link or
 *   stopped answering is held off further pushes, doubling each time, as a
 *   peer that fails to answer is backed off.
 *
 * IPs in the `exemptIps` limit (a reverse proxy on this host) are not
 * charged as IPs: their sources are told apart by identity only.
 */
import { LruMap } from "../../base/bounded-set.js";
import { sha256Hex } from "../../crypto/sha256.js";
import { addressRange } from "../../limits/address-range.js";
import { TokenBucket } from "../../limits/rate-limiter.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { OutgoingMessage, SyncMessage } from "../../records/messages.js";
import { type BudgetKeys, type BudgetKind, NEW_RECORD_CREDIT, SyncBudget, type SyncBudgetOptions } from "./sync-budget.js";

/** Sources whose last answered requests are remembered (for refusing repeats). */
const REMEMBERED_REQUESTS = 4096;
/** First hold-off of pushes after a peer dropped the link during a run that pushed to it (ms); doubles up to the window. */
const FIRST_PUSH_HOLD_MS = 1000;
/**
 * Refused requests (budget used up, a repeat) a link may draw at once, and
 * per second after, before each further one counts as a strike. An honest
 * run ends at its first refusal, with at most 7 requests in flight (3
 * range messages, 3 fetches, a change-feed request), and tries again a
 * second or more later; a peer that goes on asking only costs the server
 * the parsing of its frames (a 16,384-range message is about 450 KB).
 */
const REFUSALS_BURST = 32;
const REFUSALS_PER_SECOND = 8;

interface PushHold {
  until: number;
  ms: number;
}

export class SyncGate {
  readonly budget: SyncBudget;
  private readonly answered = new LruMap<string, number>(REMEMBERED_REQUESTS);
  private readonly holds = new LruMap<string, PushHold>(REMEMBERED_REQUESTS);
  private readonly refusals = new WeakMap<PeerSession, TokenBucket>();

  constructor(
    options: SyncBudgetOptions,
    private readonly exemptIps: readonly string[],
    private readonly now: () => number,
    storeSize: () => number,
    /** Whether the session's peer is a server this node reconciles with. */
    private readonly isServer: (session: PeerSession) => boolean,
  ) {
    this.budget = new SyncBudget(options, now, storeSize);
  }

  /** The buckets a session's work is charged to: identity, and (unless exempt) IP and address range. */
  keys(session: PeerSession): BudgetKeys {
    const ip = session.host;
    if (!ip || this.exemptIps.includes(ip)) return [`id:${session.address}`];
    const range = addressRange(ip);
    return range ? [`id:${session.address}`, `ip:${ip}`, `net:${range}`] : [`id:${session.address}`, `ip:${ip}`];
  }

  /** Who a source is for repeats and hold-offs: its IP, or its identity behind an exempt IP. */
  private source(session: PeerSession): string {
    const keys = this.keys(session);
    return keys[1] ?? keys[0]!;
  }

  /** Null when `session` may send reconciliation requests at all. */
  unproven(session: PeerSession): string | null {
    return this.isServer(session) ? null : "reconciliation is answered only to servers that proved their identity on this link";
  }

  /** Null when this request may be answered now, else why not (checked as it is about to be answered). */
  refusal(session: PeerSession, message: SyncMessage): string | null {
    const unproven = this.unproven(session);
    if (unproven || message.type === "syncPush") return unproven;
    const kind = this.budget.exhausted(this.keys(session));
    if (kind) return `sync budget (${kind}) used up`;
    if (message.type === "syncRange") {
      const at = this.answered.get(this.requestKey(session, message.m));
      const ago = at === undefined ? Infinity : this.now() - at;
      if (ago < this.budget.options.repeatWindowMs) return `the same ranges were answered ${Math.round(ago / 1000)} s ago`;
    }
    return null;
  }

  /** A request on the link was refused (`refusal`): true once it keeps asking past REFUSALS_BURST and REFUSALS_PER_SECOND (a strike). */
  keepsAsking(session: PeerSession): boolean {
    let bucket = this.refusals.get(session);
    if (!bucket) this.refusals.set(session, (bucket = new TokenBucket(REFUSALS_PER_SECOND, REFUSALS_BURST, this.now)));
    return !bucket.tryTake();
  }

  /** The request was answered: an identical one from the same source is refused for `repeatWindowMs`. */
  answeredRange(session: PeerSession, m: string): void {
    this.answered.set(this.requestKey(session, m), this.now());
  }

  private requestKey(session: PeerSession, m: string): string {
    return `${this.source(session)}\n${m.length > 64 ? sha256Hex(m) : m}`;
  }

  charge(session: PeerSession, kind: BudgetKind, amount: number): void {
    this.budget.charge(this.keys(session), kind, amount);
  }

  /** `records` new here came from the session's peer: NEW_RECORD_CREDIT scans each given back (sync-budget.ts). */
  newRecords(session: PeerSession, records: number): void {
    if (records > 0) this.budget.credit(this.keys(session), "scans", NEW_RECORD_CREDIT * records);
  }

  remaining(session: PeerSession, kind: BudgetKind): number {
    return this.budget.remaining(this.keys(session), kind);
  }

  // ---- the pushing side ------------------------------------------------

  /** Records this server may push to the peer now: 0 while it is held off. */
  pushAllowance(session: PeerSession): number {
    const hold = this.holds.get(this.source(session));
    if (hold && hold.until > this.now()) return 0;
    return Math.floor(this.budget.remaining(this.keys(session), "pushes"));
  }

  /** Records were sent to the peer (charged when sent: a peer that drops the link gets no refund). */
  pushed(session: PeerSession, records: number): void {
    this.budget.charge(this.keys(session), "pushes", records);
  }

  /**
   * A run with the peer ended. A complete run lifts any hold-off; a run that
   * pushed records and ended without completing (the link dropped, a request
   * went unanswered) holds further pushes off, doubling each time.
   */
  runEnded(session: PeerSession, complete: boolean, pushed: number): void {
    const source = this.source(session);
    const hold = this.holds.get(source);
    if (complete) {
      if (hold) hold.until = 0;
      return;
    }
    if (pushed === 0) return;
    const ms = Math.min(this.budget.options.windowMs, hold ? hold.ms * 2 : FIRST_PUSH_HOLD_MS);
    this.holds.set(source, { until: this.now() + ms, ms });
  }

  /** Until when pushes to this peer are held off (0: not held), for tests and logs. */
  heldUntil(session: PeerSession): number {
    return this.holds.get(this.source(session))?.until ?? 0;
  }
}

/** What a sync request that is not answered gets instead: its reply type, with the reason as `error`. */
export function errorReply(request: SyncMessage, error: string): OutgoingMessage {
  const id = request.id;
  if (request.type === "syncRange") return { type: "syncRangeAck", id, m: "", error };
  if (request.type === "syncFetch") return { type: "syncRecords", id, records: [], error };
  if (request.type === "syncChanges") return { type: "syncChangesAck", id, e: "", head: 0, ids: [], next: 0, more: false, error };
  if (request.type === "syncOffer") return { type: "syncOfferAck", id, ids: [], error };
  if (request.type === "syncCommit") return { type: "syncCommitAck", id, error };
  return { type: "syncPushAck", id, records: [], error };
}
