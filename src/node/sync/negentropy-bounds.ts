/**
 * What one reconciliation message may hold and cost, and what an answer
 * must look like, so that handling a message costs no more than the sync
 * budget charges for it (outside attack check: 39,000 empty ranges a
 * message cost a responder ~180 ms and read no item, and a hostile
 * responder kept its dialer comparing as many for up to 1,000 rounds).
 */
import { Mode, badSync, compareBounds } from "./negentropy-codec.js";
import { type InputRange, type SentRange, isCut } from "./negentropy-resume.js";

/**
 * Ranges in one initiator's message (`syncRange`) at most, skips included:
 * ours stop there (the rest waits for the next message, as at the frame
 * limit), and a responder refuses a longer one with BAD_MESSAGE before
 * comparing any of it. What our initiator sends: a message stops once it
 * read `readsPerMessage` items (16,384 on loopback; a long round trip
 * doubles it up to 8 ×, link-read-budget.ts), and each range it writes is
 * a piece of a split it read for (16 pieces, or one id list below 8
 * items). At 0.1 / 1 / 10 % divergence of 1,000,000 records the largest
 * message held 3,970 / 4,038 / 4,401 ranges (one per 3.7 items read or
 * more; `npm run bench -- sync`, 2026-12-06); the largest budget measured
 * across a WAN, 32,768 reads, would make about 8,900 at that rate. The cap
 * is 4 × the loopback messages and 1.8 × that (a budget grown past about
 * 4 × the base ends a message at the cap instead). A reply is bounded by
 * the message it answers instead (maxReplyRanges): an honest one held up
 * to 37,824 ranges.
 */
export const MAX_RANGES_PER_MESSAGE = 16_384;
/** Non-skip ranges an honest responder answers one fingerprinted range of ours with at most: its split (16 buckets), or one id list. */
export const REPLY_RANGES_PER_RANGE = 16;
/**
 * Ranges a responder's answer to `sent` ranges holds at most, skips
 * included: a skip before each range it answers, then its buckets (or one
 * id list), then a remainder and the skip before it.
 */
export function maxReplyRanges(sent: number): number {
  return (1 + REPLY_RANGES_PER_RANGE) * sent + 2;
}
/**
 * The work of one range read (and compared) or written, in index items read
 * (the unit of the sync budget's `scans`): a fingerprint is a sum and a
 * SHA-256. Measured on a server's LevelDB index of 20,000 records: 3–7 µs
 * a range (16,384 empty ranges a message, right or wrong fingerprints, or
 * empty id lists), 0.5–0.8 µs an item read from the cache.
 */
export const RANGE_WORK = 8;
/**
 * Fingerprinted ranges a run's replies may give back exactly as we sent
 * them (not split). An honest responder splits every range it answers by
 * fingerprint; it returns one whole only when its items there changed
 * between counting and splitting them.
 */
export const UNSPLIT_PER_RUN = 16;

/**
 * Checks that a reply answers the message it replies to as a responder
 * does (Reconciler.reconcile), so that the initiator's next round works on
 * less than this one did: every range of the reply, but a frame-full
 * remainder, lies inside one range we sent; a fingerprinted range of ours
 * comes back as at most 16 pieces, an id list of ours as at most one id
 * list; and a reply cut short (the remainder) answered at least the first
 * range we sent. A lying responder could otherwise answer each range with
 * thousands of empty pieces, or cut every reply before its first range, and
 * keep the initiator comparing for free round after round. Throws
 * BAD_MESSAGE; returns how many fingerprinted ranges came back exactly as
 * we sent them (not split: honest only when the responder's items changed
 * between counting and splitting them).
 */
export function checkReply(reply: readonly InputRange[], sent: readonly SentRange[]): number {
  let ranges = reply;
  const last = reply[reply.length - 1];
  if (last && isCut(reply, sent)) {
    if (sent.length > 0 && compareBounds(last.lower, sent[0]!.lower) <= 0) badSync("a reply cut short before answering any range");
    ranges = reply.slice(0, -1);
  }
  let unsplit = 0;
  let j = 0;
  let within = 0;
  for (const range of ranges) {
    while (j < sent.length && compareBounds(sent[j]!.upper, range.lower) <= 0) {
      j++;
      within = 0;
    }
    const ours = sent[j];
    if (!ours || compareBounds(range.lower, ours.lower) < 0 || compareBounds(range.upper, ours.upper) > 0) badSync("a reply range outside the ranges asked about");
    within++;
    if (ours.mode === Mode.IdList) {
      if (range.mode !== Mode.IdList) badSync("an id list answered with fingerprints");
      if (within > 1) badSync("an id list answered with more than one");
    } else {
      if (within > REPLY_RANGES_PER_RANGE) badSync(`a range answered with more than ${REPLY_RANGES_PER_RANGE} pieces`);
      if (range.mode === Mode.Fingerprint && compareBounds(range.lower, ours.lower) === 0 && compareBounds(range.upper, ours.upper) === 0) unsplit++;
    }
  }
  return unsplit;
}

/**
 * How long (ms) a responder's answer to one message runs before it lets
 * other work in: one `syncRange` at the 16,384-range cap took 35–120 ms
 * of CPU in one turn on a loaded 2-core box when what it read was cached
 * (each await resolved at once), holding up every other link meanwhile
 * (review). It yields every TURN_MS instead; the message, its answer and
 * the rounds of a run stay as they were (a lower read cap would cut
 * messages our own dialer sends at 1,000,000 records: up to 4,401 ranges).
 */
export const TURN_MS = 8;

/**
 * Times a long step's turns (a responder's answer; the dialer's taking in of
 * a reply and building of its next message): `pass()` waits for the next
 * turn (a macrotask: pending I/O first) once this one ran TURN_MS.
 * `waitedMs`: the time spent waiting so, not the step's own (a reply's `ms`
 * leaves it out: the asker's link-read-budget.ts takes `ms` for the
 * responder's work, and the dialer's own time on a reply leaves it out too).
 */
export class Turns {
  private started: number;
  waitedMs = 0;
  /** Turns handed over so far. */
  yields = 0;

  /** `onTurn`: called as a turn ends (the work done so far is charged then). `clock`: ms (tests count turns with their own). */
  constructor(
    private readonly onTurn?: () => void,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.started = clock();
  }

  /** A step begins: its first turn counts from now (the dialer's steps are apart in time, each in a turn of its own). */
  begin(): void {
    this.started = this.clock();
  }

  /**
   * These turns, with `check` run after each turn handed over (it may throw
   * to stop the step there): the dialer's taking in of a reply stops once
   * its budget for the peer's answers is used up and no credit is on its way.
   */
  checked(check: () => Promise<void>): { pass(): Promise<void> } {
    return {
      pass: async () => {
        const yields = this.yields;
        await this.pass();
        if (this.yields > yields) await check();
      },
    };
  }

  async pass(): Promise<void> {
    const now = this.clock();
    if (now - this.started < TURN_MS) return;
    this.onTurn?.();
    await new Promise<void>((resolve) => (typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0)));
    this.started = this.clock();
    this.waitedMs += this.started - now;
    this.yields++;
  }
}
