/**
 * The initiator's memory between rounds of a reconciliation, so that a
 * frame that fills up is resumed where it stopped instead of from the top:
 *
 * - `sent`: the ranges of a message of ours. A responder whose reply fills
 *   its frame ends it with one range [X, ∞) under a random fingerprint (see
 *   Reconciler.remainder); the ranges we had sent from X on were never
 *   answered, so we send them again as they were, instead of splitting
 *   [X, ∞) into buckets from the top and working down to them again.
 * - pending work: the ranges of replies that did not fit into our next
 *   message wait for the one after, in order. With several messages in
 *   flight (range-sync.ts keeps the peer busy while we work on a reply),
 *   the replies' ranges join one ordered queue.
 *
 * Only the initiator changes: the messages are plain negentropy V1 ranges
 * and any responder answers them as before.
 */
import { type Bound, ByteReader, BoundCoder, FINGERPRINT_SIZE, ID_SIZE, INFINITY_BOUND, Mode, PROTOCOL_VERSION, badSync, compareBounds } from "./negentropy-codec.js";

/** A range of a received message: compare our fingerprint, or reconcile against its ids. */
export interface InputRange {
  kind: "input";
  lower: Bound;
  upper: Bound;
  mode: Mode.Fingerprint | Mode.IdList;
  fingerprint?: string;
  ids?: string[];
}

/** A range we sent that was not answered: send ours again. */
export interface ResendRange {
  kind: "resend";
  lower: Bound;
  upper: Bound;
  mode: Mode.Fingerprint | Mode.IdList;
}

export type WorkItem = InputRange | ResendRange;

export interface SentRange {
  lower: Bound;
  upper: Bound;
  mode: Mode.Fingerprint | Mode.IdList;
}

/** A received message's ranges in order, decoded one at a time as they are asked for (a skip as undefined), `maxRanges` at most. */
export function* rangesOf(input: ByteReader, maxRanges: number): Generator<InputRange | undefined> {
  const coder = new BoundCoder();
  let lower: Bound = { t: 0, id: "" };
  let ranges = 0;
  while (input.remaining > 0) {
    if (++ranges > maxRanges) badSync(`over ${maxRanges} ranges in one message`);
    const upper = coder.read(input);
    if (compareBounds(upper, lower) < 0) badSync("ranges out of order");
    const mode = input.varint();
    if (mode === Mode.Fingerprint) yield { kind: "input", lower, upper, mode, fingerprint: input.hex(FINGERPRINT_SIZE) };
    else if (mode === Mode.IdList) {
      const n = input.varint();
      if (n * ID_SIZE > input.remaining) badSync("id list longer than the message");
      const ids = new Array<string>(n);
      for (let i = 0; i < n; i++) ids[i] = input.hex(ID_SIZE);
      yield { kind: "input", lower, upper, mode, ids };
    } else if (mode === Mode.Skip) yield undefined;
    else badSync(`unknown range mode ${mode}`);
    lower = upper;
  }
}

/** The non-skip ranges of a received message, in order, and how many it held, skips included (at most `maxRanges`). */
export function readRanges(input: ByteReader, maxRanges: number): { ranges: InputRange[]; count: number } {
  const ranges: InputRange[] = [];
  let count = 0;
  for (const range of rangesOf(input, maxRanges)) if ((count++, range)) ranges.push(range);
  return { ranges, count };
}

/**
 * A reply to the initiator: its version checked and its ranges decoded as `readRanges` does, letting other work in
 * (`turns`: Turns, negentropy-bounds.ts) as it goes: a reply of tens of thousands of ranges took 7-14 ms to decode.
 */
export async function readReply(reply: Uint8Array, maxRanges: number, turns: { pass(): Promise<void> }): Promise<{ ranges: InputRange[]; count: number }> {
  const input = new ByteReader(reply);
  const version = input.byte();
  if (version < 0x60 || version > 0x6f) badSync("invalid protocol version byte");
  if (version !== PROTOCOL_VERSION) badSync(`unsupported protocol version ${version - 0x60}`);
  const ranges: InputRange[] = [];
  let count = 0;
  for (const range of rangesOf(input, maxRanges)) {
    if (++count % 256 === 0) await turns.pass();
    if (range) ranges.push(range);
  }
  return { ranges, count };
}

/** Whether the reply ends with a responder's frame-full remainder (see resumeAfterCut). */
export function isCut(reply: readonly InputRange[], sent: readonly SentRange[]): boolean {
  const last = reply[reply.length - 1];
  if (!last || last.mode !== Mode.Fingerprint || last.upper.t !== INFINITY_BOUND.t) return false;
  const x = last.lower;
  return sent.some((r) => compareBounds(r.lower, x) >= 0 || (r.mode === Mode.IdList && compareBounds(r.lower, x) < 0 && compareBounds(x, r.upper) < 0));
}

/**
 * When the reply ends with a responder's frame-full remainder, that range is
 * replaced by ours it left unanswered. A remainder is recognised by what we
 * sent: a last range [X, ∞) by fingerprint where we had sent a range that
 * starts at or after X (the responder stopped before it), or where X falls
 * inside an id list of ours (the responder cut its own list short). A real
 * last bucket of a split of ours lies inside a fingerprint range we sent,
 * with nothing of ours after it.
 */
export function resumeAfterCut(reply: InputRange[], sent: readonly SentRange[]): WorkItem[] {
  if (!isCut(reply, sent)) return reply;
  const x = reply[reply.length - 1]!.lower;
  const resend: ResendRange[] = sent
    .filter((r) => compareBounds(r.upper, x) > 0)
    .map((r) => ({ kind: "resend", lower: compareBounds(r.lower, x) < 0 ? x : r.lower, upper: r.upper, mode: r.mode }));
  return [...reply.slice(0, -1), ...resend];
}

/**
 * Two lists of disjoint ranges, each in order, as one list in order. The
 * ranges of messages in flight never overlap, so neither do the work items
 * their replies give back, wherever they come from.
 */
export function mergeByBound(a: WorkItem[], b: WorkItem[]): WorkItem[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  if (compareBounds(a[a.length - 1]!.lower, b[0]!.lower) < 0) return a.concat(b);
  const out: WorkItem[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(compareBounds(a[i]!.lower, b[j]!.lower) <= 0 ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

/** A message of the initiator's and the ranges it carries: its reply is read against them. */
export interface InitiatorMessage {
  readonly message: Uint8Array;
  readonly sent: readonly SentRange[];
}

/** What the initiator took of a reply: ids we have and the peer lacks / the peer has and we lack, and by each id list that differed. */
export interface TakenReply {
  have: string[];
  need: string[];
  lists: Array<SentRange & { ids: string[] }>;
}

export interface ReconcileResult {
  /** The next message to send, or null when the initiator is done. */
  output: Uint8Array | null;
  /** Initiator only: ids we have and the peer lacks / the peer has and we lack. */
  have: string[];
  need: string[];
}
