/**
 * Range-based set reconciliation, negentropy protocol V1 (hoytech/negentropy,
 * docs/negentropy-protocol-v1.md), over a *streamed* sorted item source: no
 * step holds more than one message's worth of items, so memory stays bounded
 * whatever the size of the set. Each received range costs one scan of our
 * items in it; a split costs one more.
 */
import {
  Accumulator,
  type Bound,
  BoundCoder,
  ByteReader,
  ByteWriter,
  FINGERPRINT_SIZE,
  ID_SIZE,
  INFINITY_BOUND,
  type Item,
  MIN_BOUND,
  Mode,
  PROTOCOL_VERSION,
  type ItemSource,
  badSync,
  compareBounds,
  countRanges,
  minimalBound,
  singles,
  writeRemainder,
} from "./negentropy-codec.js";
import { type InitiatorMessage, type ReconcileResult, type SentRange, type TakenReply, type WorkItem, mergeByBound, readReply, resumeAfterCut } from "./negentropy-resume.js";
import { MAX_RANGES_PER_MESSAGE, RANGE_WORK, Turns, UNSPLIT_PER_RUN, checkReply, maxReplyRanges } from "./negentropy-bounds.js";

const BUCKETS = 16;
/** Bytes kept free below the frame limit, as the reference implementation does. */
const FRAME_MARGIN = 200;

export class Reconciler {
  /** Items read from the source so far; `reads.extra`: those its store read besides (whole buckets, read-ahead), work too. */
  scanned = 0;
  readonly reads = { extra: 0 };
  /** Ranges read from the peer's messages (each compared once) and written so far. */
  ranges = 0;
  /** Ranges written so far (counts a message's). */
  private written = 0;
  /** Initiator: fingerprinted ranges the peer's replies gave back unsplit. */
  private unsplit = 0;
  /** Initiator: ranges of the peer's replies still to compare and split, in order (negentropy-resume.ts; one queue for all in flight; range-frontier.ts saves and restores it), and the sequential API's last message. */
  pending: WorkItem[] = [];
  private last: InitiatorMessage | undefined;
  /** Initiator steps run one at a time (`take` and `next` both await the source). */
  private turn: Promise<unknown> = Promise.resolve();
  /** Lets other work in every TURN_MS: an initiator's `take` and `next` (range-sync.ts charges the work as each turn ends), a responder's answer. */
  turns = new Turns();

  constructor(
    private readonly source: ItemSource,
    /** Largest message this side writes, in bytes (0 = no limit; else at least 4096). */
    private readonly frameLimit: number,
    readonly isInitiator: boolean,
    /** A differing range of fewer items than this is sent as its ids, a larger one split into 16 (the spec's 2 × buckets). */
    private readonly idListBelow = BUCKETS * 2,
    /** Initiator: items read for one message at most, 0 = no limit; may change between messages (link-read-budget.ts). */
    public readsPerMessage = 0,
    /** Ranges in a message at most: ours as initiator, what we read of one as responder (MAX_RANGES_PER_MESSAGE; smaller in tests). */
    private readonly maxRanges = MAX_RANGES_PER_MESSAGE,
  ) {
    if (frameLimit !== 0 && frameLimit < 4096) throw new RangeError("frameLimit too small");
    if (idListBelow < 2 || idListBelow > BUCKETS * 2) throw new RangeError("idListBelow out of range");
    if (!(maxRanges >= 2 * (BUCKETS + 1))) throw new RangeError("maxRanges too small");
  }

  /** The initiator's first message: the whole set, split into fingerprinted buckets. */
  async initiate(): Promise<Uint8Array> {
    this.last = await this.start();
    return this.last.message;
  }

  /** Pipelined initiator: the first message, with the ranges it carries. */
  async start(): Promise<InitiatorMessage> {
    const out = new ByteWriter();
    out.byte(PROTOCOL_VERSION);
    const whole = await this.fingerprint(MIN_BOUND, INFINITY_BOUND);
    const sent: SentRange[] = [];
    await this.splitRange(MIN_BOUND, INFINITY_BOUND, whole.count, out, new BoundCoder(), sent);
    return { message: out.view().slice(), sent };
  }

  /** Ranges waiting for `next` (initiator). */
  get pendingRanges(): number {
    return this.pending.length;
  }

  /** The work this reconciler did so far, in index items read: items read (from the store too), and RANGE_WORK a range read (and compared) or written. */
  get work(): number {
    return this.scanned + this.reads.extra + RANGE_WORK * this.ranges;
  }

  /**
   * Responder: the answer stops as at the frame limit once it did `workLimit` (the asker's budget left), or read
   * `maxRanges` ranges, and answered a range at least: the initiator sends the rest again (the ranges past
   * `maxRanges` are never read; older initiators sent up to 50,000 a message). Yields every TURN_MS (`turns`).
   */
  async reconcile(query: Uint8Array, workLimit = Infinity, turns = new Turns()): Promise<ReconcileResult> {
    if (this.isInitiator) return this.reconcileAsInitiator(query);
    this.turns = turns; // splitting a large range lets other work in too
    const workBefore = this.work;
    this.ranges += countRanges(query, this.maxRanges);
    const input = new ByteReader(query);
    const coder = new BoundCoder();
    const full = new ByteWriter();
    full.byte(PROTOCOL_VERSION);
    const version = input.byte();
    if (version < 0x60 || version > 0x6f) badSync("invalid protocol version byte");
    if (version !== PROTOCOL_VERSION) return { output: full.view().slice(), have: [], need: [] };

    let prevBound = MIN_BOUND;
    let skip = false;
    let answered = 0; // ranges of the message answered, skips not counted
    let read = 0; // ranges read, skips counted
    while (input.remaining > 0) {
      await turns.pass();
      if (answered > 0 && (this.work - workBefore >= workLimit || read >= this.maxRanges)) {
        // The rest goes back as the remainder from here on (the skipped ranges before it are answered).
        if (skip) this.skipTo(full, coder, prevBound);
        this.remainder(full, coder);
        break;
      }
      const o = new ByteWriter();
      const doSkip = () => {
        if (!skip) return;
        skip = false;
        this.skipTo(o, coder, prevBound);
      };
      if (read++ >= this.maxRanges) badSync(`${this.maxRanges} ranges in one message and none to answer`);
      const currBound = coder.read(input);
      if (compareBounds(currBound, prevBound) < 0) badSync("ranges out of order");
      const mode = input.varint();

      if (mode === Mode.Skip) {
        skip = true;
      } else if (mode === Mode.Fingerprint) {
        answered++;
        const theirs = input.hex(FINGERPRINT_SIZE);
        const ours = await this.fingerprint(prevBound, currBound);
        if (theirs !== ours.fingerprint) {
          doSkip();
          await this.splitRange(prevBound, currBound, ours.count, o, coder);
        } else skip = true;
      } else if (mode === Mode.IdList) {
        answered++;
        const n = input.varint();
        input.skip(n * ID_SIZE); // the initiator's ids: unused here (countRanges checked the list fits the message)
        doSkip();
        full.append(o);
        const ended = await this.idList(prevBound, currBound, full, coder);
        if (compareBounds(ended, currBound) < 0) {
          // Frame full: the rest of the set goes back as one range the initiator reconciles next round.
          this.remainder(full, coder);
          break;
        }
        prevBound = currBound;
        continue;
      } else {
        badSync(`unknown range mode ${mode}`);
      }

      if (this.exceeded(full.length + o.length)) {
        this.remainder(full, coder);
        break;
      }
      full.append(o);
      prevBound = currBound;
    }
    return { output: full.view().slice(), have: [], need: [] };
  }

  /** The initiator's turn, one round at a time: `take` the reply to our last message, then the `next` message (null when done). */
  private async reconcileAsInitiator(query: Uint8Array): Promise<ReconcileResult> {
    const { have, need } = await this.take(query, this.last ?? { message: new Uint8Array(0), sent: [] });
    this.last = await this.next();
    return { output: this.last?.message ?? null, have, need };
  }

  /**
   * Pipelined initiator: reads the reply to `to` (one of several messages in flight). Its id lists tell at once what we have and the peer
   * lacks and the reverse (`lists`: those of each id list that differed); its fingerprints, and our ranges that a reply cut at its frame
   * limit left unanswered (negentropy-resume.ts), join the pending ranges that `next` compares and splits. `turns`: Turns.checked to stop at a turn's end.
   */
  take(reply: Uint8Array, to: InitiatorMessage, turns: { pass(): Promise<void> } = this.turns): Promise<TakenReply> {
    return this.exclusively(async () => {
      const [have, need, refine, lists]: [string[], string[], WorkItem[], TakenReply["lists"]] = [[], [], [], []];
      const { ranges, count } = await readReply(reply, maxReplyRanges(to.sent.length), turns);
      this.ranges += count;
      this.unsplit += checkReply(ranges, to.sent);
      if (this.unsplit > UNSPLIT_PER_RUN) badSync(`${this.unsplit} ranges answered unsplit`);
      for (const item of resumeAfterCut(ranges, to.sent)) {
        await turns.pass();
        if (item.kind === "resend" || item.mode === Mode.Fingerprint) {
          refine.push(item);
          continue;
        }
        const [theirs, h, n] = [new Set(item.ids), have.length, need.length];
        for await (const page of this.pages(item.lower, item.upper)) {
          this.scanned += page.length;
          for (const entry of page) if (!theirs.delete(entry.id)) have.push(entry.id);
          await turns.pass();
        }
        for (const id of theirs) need.push(id);
        if (have.length > h || need.length > n) lists.push({ lower: item.lower, upper: item.upper, mode: Mode.IdList, ids: [...have.slice(h), ...need.slice(n)] });
      }
      this.pending = mergeByBound(this.pending, refine);
      return { have, need, lists };
    });
  }

  /** Pipelined initiator: the next message, as many pending ranges compared and split as fit one frame (the rest wait for the message after), or undefined when no range differs any more. */
  next(): Promise<InitiatorMessage | undefined> {
    return this.exclusively(async () => {
      const full = new ByteWriter();
      full.byte(PROTOCOL_VERSION);
      const coder = new BoundCoder();
      const sent: SentRange[] = [];
      let at = MIN_BOUND; // where the message written so far ends
      let done = 0;
      const scannedBefore = this.scanned;
      const writtenBefore = this.written;
      for (; done < this.pending.length; done++) {
        await this.turns.pass();
        if (this.readsPerMessage !== 0 && this.scanned - scannedBefore >= this.readsPerMessage && full.length > 1) break;
        // A fingerprint each (counted as work when its reply was read): a message compares at most as many ranges as it may carry, once it carries any.
        if (done >= this.maxRanges && full.length > 1) break;
        const item = this.pending[done]!;
        const ours = await this.fingerprint(item.lower, item.upper);
        if (item.kind === "input" && ours.fingerprint === item.fingerprint) continue;
        // Written aside and appended if it fits (the coder's state after a write that does not fit no longer matters: we stop).
        const o = new ByteWriter();
        const written: SentRange[] = [];
        if (compareBounds(at, item.lower) < 0) this.skipTo(o, coder, item.lower);
        if (item.kind === "input") {
          await this.splitRange(item.lower, item.upper, ours.count, o, coder, written);
        } else if (item.mode === Mode.Fingerprint) {
          this.write(o, coder, item.lower, item.upper, Mode.Fingerprint, ours.fingerprint, written);
        } else {
          await this.splitRange(item.lower, item.upper, Math.min(ours.count, this.idListBelow - 1), o, coder, written);
        }
        if ((this.exceeded(full.length + o.length) || this.written - writtenBefore > this.maxRanges) && full.length > 1) break;
        full.append(o);
        for (const range of written) sent.push(range);
        at = item.upper;
      }
      this.pending = done === this.pending.length ? [] : this.pending.slice(done);
      return full.length === 1 ? undefined : { message: full.view().slice(), sent };
    });
  }

  /** One initiator step at a time, each beginning a turn of its own (`turns`). */
  private exclusively<T>(step: () => Promise<T>): Promise<T> {
    const begun = () => (this.turns.begin(), step());
    const run = this.turn.then(begun, begun);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private wrote(): void {
    this.written++;
    this.ranges++;
  }

  /** Writes a skip up to `upper`. */
  private skipTo(out: ByteWriter, coder: BoundCoder, upper: Bound): void {
    this.wrote();
    coder.write(out, upper);
    out.varint(Mode.Skip);
  }

  /** Writes one range [lower, upper) with a fingerprint or ids, noting it in `sink` (the initiator's sent ranges). */
  private write(out: ByteWriter, coder: BoundCoder, lower: Bound, upper: Bound, mode: Mode.Fingerprint | Mode.IdList, payload: string | string[], sink?: SentRange[]): void {
    this.wrote();
    coder.write(out, upper);
    out.varint(mode);
    if (typeof payload === "string") out.hex(payload);
    else {
      out.varint(payload.length);
      for (const id of payload) out.hex(id);
    }
    sink?.push({ lower, upper, mode });
  }

  /** The source's items in [lower, upper) by pages (one item a page from a source that has no pages). */
  private pages(lower: Bound, upper: Bound): AsyncIterable<readonly Item[]> | Iterable<readonly Item[]> {
    return this.source.scanCached?.(lower, upper) ?? this.source.scanPages?.(lower, upper, this.reads) ?? singles(this.source.scan(lower, upper));
  }

  private exceeded(n: number): boolean {
    return this.frameLimit !== 0 && n > this.frameLimit - FRAME_MARGIN;
  }

  /** A frame-full remainder closes the message (writeRemainder). */
  private remainder(out: ByteWriter, coder: BoundCoder): void {
    this.wrote();
    writeRemainder(out, coder);
  }

  /** Responder's IdList for [lower, upper), cut short at the frame limit; returns the bound it ends at. */
  private async idList(lower: Bound, upper: Bound, out: ByteWriter, coder: BoundCoder): Promise<Bound> {
    const ids: string[] = [];
    let end = upper;
    read: for await (const page of this.pages(lower, upper)) {
      for (const item of page) {
        this.scanned++;
        if (this.exceeded(out.length + (ids.length + 1) * ID_SIZE + 64)) {
          end = { t: item.t, id: item.id };
          break read;
        }
        ids.push(item.id);
      }
    }
    this.wrote();
    coder.write(out, end);
    out.varint(Mode.IdList);
    out.varint(ids.length);
    for (const id of ids) out.hex(id);
    return end;
  }

  private async fingerprint(lower: Bound, upper: Bound): Promise<{ fingerprint: string; count: number }> {
    const acc = new Accumulator();
    if (this.source.sum) this.scanned += this.source.sumCached?.(lower, upper, acc) ?? (await this.source.sum(lower, upper, acc, this.reads));
    else {
      for await (const page of this.pages(lower, upper)) {
        this.scanned += page.length;
        for (const item of page) acc.add(item.id);
      }
    }
    return { fingerprint: acc.fingerprint(), count: acc.count };
  }

  /** Splits at the source's bounds inside the range, if any (no scan; fewer than 16 pieces when fewer: whole buckets the peer sums unread). */
  private async splitAtSourceBounds(lower: Bound, upper: Bound, out: ByteWriter, coder: BoundCoder, sink?: SentRange[]): Promise<boolean> {
    const points = await this.source.splitPoints?.(lower, upper, BUCKETS);
    if (!points) return false;
    let prev = lower;
    for (const bound of [...points, upper]) {
      const { fingerprint } = await this.fingerprint(prev, bound);
      this.write(out, coder, prev, bound, Mode.Fingerprint, fingerprint, sink);
      prev = bound;
    }
    return true;
  }

  /**
   * Splits [lower, upper) holding `count` items into 16 fingerprinted buckets
   * (or lists its ids when fewer than `idListBelow`), in one pass. The set may
   * change between counting and splitting; every bucket's fingerprint covers
   * exactly the items between its written bounds, so that only costs extra rounds.
   */
  private async splitRange(lower: Bound, upper: Bound, count: number, out: ByteWriter, coder: BoundCoder, sink?: SentRange[]): Promise<void> {
    if (count >= BUCKETS * 2 && (await this.splitAtSourceBounds(lower, upper, out, coder, sink))) return;
    if (count < this.idListBelow) {
      const ids: string[] = [];
      read: for await (const page of this.pages(lower, upper)) {
        for (const item of page) {
          this.scanned++;
          ids.push(item.id);
          if (ids.length > BUCKETS * 8) break read; // grew meanwhile: fall back to buckets below
        }
      }
      if (ids.length <= BUCKETS * 8) {
        this.write(out, coder, lower, upper, Mode.IdList, ids, sink);
        return;
      }
      count = BUCKETS * 8;
    }
    const perBucket = Math.floor(count / BUCKETS);
    const withExtra = count % BUCKETS;
    const sizeOf = (bucket: number) => perBucket + (bucket < withExtra ? 1 : 0);
    const acc = new Accumulator();
    let bucket = 0;
    let prev: Item | undefined;
    let from = lower;
    for await (const page of this.pages(lower, upper)) {
      await this.turns.pass();
      this.scanned += page.length;
      for (const item of page) {
        if (prev && bucket < BUCKETS - 1 && acc.count >= sizeOf(bucket)) {
          const bound = minimalBound(prev, item);
          this.write(out, coder, from, bound, Mode.Fingerprint, acc.fingerprint(), sink);
          from = bound;
          acc.reset();
          bucket++;
        }
        acc.add(item.id);
        prev = item;
      }
    }
    this.write(out, coder, from, upper, Mode.Fingerprint, acc.fingerprint(), sink);
  }
}
