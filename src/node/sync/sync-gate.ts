/**
 * Who may reconcile with this server, and what it may cost. Reconciliation
 * (range sync, fetches, change feeds, pushes) copies the store, so:
 *
 * - it is answered only on links whose server identity was proven in this
 *   session (`PeerSession.provenServer`); anyone else is refused;
 * - its work is charged to the asker's identity, its IP and its address
 *   range (/24, /64) at once (SyncBudget): a fresh identity, or the next
 *   address of the range, buys nothing;
 * - our own work on a peer's answers (when we run) goes to buckets of its
 *   own per identity and IP, bounded per range by membership (see
 *   `chargeAnswers`), never to the buckets neighbours share;
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
import type { Limits } from "../../limits/limits.js";
import { TokenBucket } from "../../limits/rate-limiter.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { OutgoingMessage, SyncMessage } from "../../records/messages.js";
import { type BudgetKeys, type BudgetKind, LOOKUP_WORK, NEW_RECORD_CREDIT, SyncBudget, type SyncBudgetOptions } from "./sync-budget.js";

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
/** Scans left that a fetch is answered with at least: 64 ids looked up (one read of the store's). */
const FETCH_MIN_SCANS = 64 * LOOKUP_WORK;
/** Record keys remembered as having earned NEW_RECORD_CREDIT within the window (`creditable`). */
const CREDITED_KEYS = 32_768;
/**
 * Identities of one address range (/24, /64) that hold a budget for our
 * work on their answers at once, as a multiple of `rangeShare`: see
 * `dialRefusal`.
 */
export const DIAL_MEMBERS_PER_SHARE = 2;
/**
 * What a peer's claim of its store's size counts for at most, as a multiple
 * of (our store + slack): see `answersSized`.
 */
export const CLAIMED_SIZE_MULTIPLE = 16;

interface PushHold {
  until: number;
  ms: number;
}

export class SyncGate {
  readonly budget: SyncBudget;
  private readonly answered = new LruMap<string, number>(REMEMBERED_REQUESTS);
  private readonly holds = new LruMap<string, PushHold>(REMEMBERED_REQUESTS);
  private readonly refusals = new WeakMap<PeerSession, TokenBucket>();
  /** Record keys (a digest of long ones) that earned NEW_RECORD_CREDIT, and when. */
  private readonly credited = new LruMap<string, number>(CREDITED_KEYS);
  /** Per address range: the identities holding a budget for our work on their answers, and when each was last charged. */
  private readonly dialMembers = new LruMap<string, Map<string, number>>(REMEMBERED_REQUESTS);

  constructor(
    options: SyncBudgetOptions,
    /** `exemptIps`; `maxStoreKeys`: a peer's claimed store size counts for no more (`answersSized`). */
    private readonly limits: Pick<Limits, "exemptIps" | "maxStoreKeys">,
    private readonly now: () => number,
    private readonly storeSize: () => number,
    /** Whether the session's peer is a server this node reconciles with. */
    private readonly isServer: (session: PeerSession) => boolean,
  ) {
    this.budget = new SyncBudget(options, now, storeSize);
  }

  /** The buckets a session's work is charged to: identity, and (unless exempt) IP and address range. */
  keys(session: PeerSession): BudgetKeys {
    const ip = session.host;
    if (!ip || this.limits.exemptIps.includes(ip)) return [`id:${session.address}`];
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
    // A fetch looks up no more ids than the scans left pay for (StoredRecords.answer): with a few left, its answer would
    // list nearly all its ids back under `more`, again and again as the bucket refills an item at a time.
    if (message.type === "syncFetch" && this.budget.remaining(this.keys(session), "scans") < FETCH_MIN_SCANS) return "sync budget (scans) used up";
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

  /**
   * Records new here (their keys) that the session's peer pushed or we fetched from it: NEW_RECORD_CREDIT scans each
   * given back (sync-budget.ts), once a key a window, to its asking buckets and to those for our work on its answers
   * (the two runs of a link go on at once: a sparse server's run with a dense one is paid by the records the dense
   * one pushes it as much as by those it fetches; test/sync-dense-peer.test.ts). Each set stays within its capacity.
   */
  newRecords(session: PeerSession, keys: readonly string[]): void {
    const records = this.creditable(keys);
    if (records === 0) return;
    this.budget.credit(this.keys(session), "scans", NEW_RECORD_CREDIT * records);
    this.budget.credit(this.dialKeys(session), "scans", NEW_RECORD_CREDIT * records);
  }

  /**
   * How many of these keys earn credit now: a key earns it once a window,
   * whoever sent it. Each version of a key is a record new here, so a
   * writer re-signing its own key (many versions oldest first in one frame,
   * or one a frame) minted NEW_RECORD_CREDIT with every version, though
   * each replaced the last and the store did not grow (review); now a
   * version earns nothing while its key earned within the window. A key
   * forgotten (CREDITED_KEYS, least recent first) earns again: an attacker
   * cycling through more keys than that pays a signed record verified here
   * for each credit, as with a fresh key.
   */
  private creditable(keys: readonly string[]): number {
    let count = 0;
    const now = this.now();
    for (const key of keys) {
      const name = key.length > 64 ? sha256Hex(key) : key;
      const at = this.credited.get(name);
      if (at !== undefined && now - at < this.budget.options.windowMs) continue;
      this.credited.set(name, now);
      count++;
    }
    return count;
  }

  remaining(session: PeerSession, kind: BudgetKind): number {
    return this.budget.remaining(this.keys(session), kind);
  }

  // ---- our work on a peer's answers (the side that runs) -----------------
  //
  // Charged to buckets of their own, `dial:id:<identity>` and `dial:ip:<ip>`,
  // never to the peer's asking buckets and never to one bucket its address
  // range shares: a stranger in the same /24 that used up a shared range
  // bucket stopped our runs with an honest server there too (review). What
  // the range bucket bought (many fresh identities of one range do not each
  // get a full budget) comes from membership instead: at most
  // DIAL_MEMBERS_PER_SHARE × `rangeShare` identities of one range hold such a
  // budget at once (one charged within the last window stays a member), so
  // the range costs us at most that many budgets a window (and one IP one
  // budget, whatever identities it shows), and a member's budget is its own:
  // no neighbour can use it up. A newcomer waits only while that many others
  // of its range ran with us within the window; this node runs only on links
  // it holds, and the mesh keeps one range to a quarter of those anyway.

  private dialKeys(session: PeerSession): BudgetKeys {
    return this.keys(session).filter((key) => !key.startsWith("net:")).map((key) => `dial:${key}`);
  }

  /** Whether the session's identity holds a budget for our work on its answers (admitting it when its range has room). */
  private dialMember(session: PeerSession): boolean {
    const ip = session.host;
    const range = ip && !this.limits.exemptIps.includes(ip) ? addressRange(ip) : undefined;
    if (range === undefined) return true;
    let members = this.dialMembers.get(range);
    if (!members) this.dialMembers.set(range, (members = new Map()));
    const now = this.now();
    for (const [id, at] of members) if (now - at >= this.budget.options.windowMs) members.delete(id);
    if (!members.has(session.address) && members.size >= DIAL_MEMBERS_PER_SHARE * Math.max(1, this.budget.options.rangeShare)) return false;
    members.set(session.address, now);
    return true;
  }

  /** Our work on the peer's answers (index items read): charged to its dialer-side buckets. */
  chargeAnswers(session: PeerSession, amount: number): void {
    if (amount > 0 && this.dialMember(session)) this.budget.charge(this.dialKeys(session), "scans", amount);
  }

  /**
   * The peer says its store holds `claimed` items (a range reply's `n`): the budget for our work on its answers is
   * reckoned by the larger of both stores from then on (SyncBudget.sizeAtLeast). The honest work of a run grows with
   * the larger store: sized by ours alone, a server holding 2,500 records did ~600,000 items of work on the answers of
   * one holding 50,000 against a budget of 300,000, and finished only because each record it fetched earned
   * NEW_RECORD_CREDIT back, the work coming first (fingerprints of large ranges) and the credit after (a CI run
   * stopped after 2 rounds so). The claim is the peer's word, and what a liar gains by it is our work on its own
   * answers (nothing of its asking buckets, nothing from anyone else), so it counts for at most
   * CLAIMED_SIZE_MULTIPLE × (our store + slack), and never more than our store may hold (a larger store is more than
   * we would take in). So a liar's budget grows at most 17-fold (~4,000,000 items a window, a few seconds of a core,
   * for a server of fewer than 10,000 records with the defaults): what any peer of a server 16 × ours may cost it
   * anyway. An honest run does ~12 items of work a record of the larger store (603,494 for 50,000): a peer up to
   * 16 × (our store + slack) finishes its run with no credit at all, a larger one with the credit its records earn.
   */
  answersSized(session: PeerSession, claimed: number): void {
    const bound = Math.min(claimed, this.limits.maxStoreKeys, CLAIMED_SIZE_MULTIPLE * (this.storeSize() + this.budget.options.slack));
    if (bound > 0 && this.dialMember(session)) this.budget.sizeAtLeast(this.dialKeys(session), bound);
  }

  /** Work we may still do on the peer's answers now: 0 while its range has no room for its identity. */
  answersRemaining(session: PeerSession): number {
    return this.dialMember(session) ? this.budget.remaining(this.dialKeys(session), "scans") : 0;
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
  if (request.type === "syncFetch" || request.type === "syncCopy") return { type: "syncRecords", id, records: [], error };
  if (request.type === "syncChanges") return { type: "syncChangesAck", id, e: "", head: 0, ids: [], next: 0, more: false, error };
  if (request.type === "syncOffer") return { type: "syncOfferAck", id, ids: [], error };
  if (request.type === "syncCommit") return { type: "syncCommitAck", id, error };
  return { type: "syncPushAck", id, records: [], error };
}
