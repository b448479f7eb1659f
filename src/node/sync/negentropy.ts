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
  badSync,
  compareBounds,
  minimalBound,
} from "./negentropy-codec.js";
import { type SentRange, type WorkItem, mergeByBound, readRanges, resumeAfterCut } from "./negentropy-resume.js";

/**
 * Sorted items; `scan` yields those in [lower, upper) in (timestamp, id) order.
 * A source may also keep sums by range (`sum` adds a range's ids to an
 * accumulator, returning the entries it read) and offer bounds to split a
 * long range at (`splitPoints`), so that neither needs a full scan.
 */
export interface ItemSource {
  scan(lower: Bound, upper: Bound): AsyncIterable<Item>;
  /** The same items a page at a time (one promise a page: reconciliation reads many short ranges). */
  scanPages?(lower: Bound, upper: Bound): AsyncIterable<readonly Item[]>;
  /** Without waiting: the items in pages, or undefined when the source would have to read them. */
  scanCached?(lower: Bound, upper: Bound): (readonly Item[])[] | undefined;
  /** Without waiting: `sum`, or undefined (and `acc` untouched) when the source would have to read. */
  sumCached?(lower: Bound, upper: Bound, acc: Accumulator): number | undefined;
  sum?(lower: Bound, upper: Bound, acc: Accumulator): Promise<number>;
  splitPoints?(lower: Bound, upper: Bound, parts: number): Promise<Bound[] | undefined>;
}

/** A message of the initiator's and the ranges it carries: its reply is read against them. */
export interface InitiatorMessage {
  readonly message: Uint8Array;
  readonly sent: readonly SentRange[];
}

export interface ReconcileResult {
  /** The next message to send, or null when the initiator is done. */
  output: Uint8Array | null;
  /** Initiator only: ids we have and the peer lacks / the peer has and we lack. */
  have: string[];
  need: string[];
}

const BUCKETS = 16;
/** Ranges of one received message processed at most (a peer cannot make one message cost without limit). */
const MAX_RANGES_PER_MESSAGE = 50_000;
/** Bytes kept free below the frame limit, as the reference implementation does. */
const FRAME_MARGIN = 200;

export class Reconciler {
  /** Items read from the source so far (the work this reconciler caused). */
  scanned = 0;

  /**
   * Initiator: ranges of the peer's replies still to be compared and split,
   * in order (see negentropy-resume.ts), and the message of the sequential API's
   * last round. Replies to several messages in flight feed the one queue.
   */
  private pending: WorkItem[] = [];
  private last: InitiatorMessage | undefined;
  /** Initiator steps run one at a time (`take` and `next` both await the source). */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: ItemSource,
    /** Largest message this side writes, in bytes (0 = no limit; else at least 4096). */
    private readonly frameLimit: number,
    readonly isInitiator: boolean,
    /** A differing range of fewer items than this is sent as its ids, a larger one split into 16 (the spec's 2 × buckets). */
    private readonly idListBelow = BUCKETS * 2,
    /** Initiator: items read for one message at most, 0 = no limit; may change between messages (link-read-budget.ts). */
    public readsPerMessage = 0,
  ) {
    if (frameLimit !== 0 && frameLimit < 4096) throw new RangeError("frameLimit too small");
    if (idListBelow < 2 || idListBelow > BUCKETS * 2) throw new RangeError("idListBelow out of range");
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

  async reconcile(query: Uint8Array): Promise<ReconcileResult> {
    if (this.isInitiator) return this.reconcileAsInitiator(query);
    const input = new ByteReader(query);
    const coder = new BoundCoder();
    const full = new ByteWriter();
    full.byte(PROTOCOL_VERSION);
    const version = input.byte();
    if (version < 0x60 || version > 0x6f) badSync("invalid protocol version byte");
    if (version !== PROTOCOL_VERSION) return { output: full.view().slice(), have: [], need: [] };

    let prevBound = MIN_BOUND;
    let skip = false;
    let ranges = 0;
    while (input.remaining > 0) {
      if (++ranges > MAX_RANGES_PER_MESSAGE) badSync("too many ranges in one message");
      const o = new ByteWriter();
      const doSkip = () => {
        if (!skip) return;
        skip = false;
        coder.write(o, prevBound);
        o.varint(Mode.Skip);
      };
      const currBound = coder.read(input);
      if (compareBounds(currBound, prevBound) < 0) badSync("ranges out of order");
      const mode = input.varint();

      if (mode === Mode.Skip) {
        skip = true;
      } else if (mode === Mode.Fingerprint) {
        const theirs = input.hex(FINGERPRINT_SIZE);
        const ours = await this.fingerprint(prevBound, currBound);
        if (theirs !== ours.fingerprint) {
          doSkip();
          await this.splitRange(prevBound, currBound, ours.count, o, coder);
        } else skip = true;
      } else if (mode === Mode.IdList) {
        const n = input.varint();
        if (n * ID_SIZE > input.remaining) badSync("id list longer than the message");
        for (let i = 0; i < n; i++) input.hex(ID_SIZE);
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
   * Pipelined initiator: reads the reply to `to` (one of several messages
   * in flight). Its id lists tell at once what we have and the peer lacks
   * and the reverse; its fingerprints, and our ranges that a reply cut at
   * its frame limit left unanswered (negentropy-resume.ts), join the
   * pending ranges that `next` compares and splits.
   */
  take(reply: Uint8Array, to: InitiatorMessage): Promise<{ have: string[]; need: string[] }> {
    return this.exclusively(async () => {
      const have: string[] = [];
      const need: string[] = [];
      const input = new ByteReader(reply);
      const version = input.byte();
      if (version < 0x60 || version > 0x6f) badSync("invalid protocol version byte");
      if (version !== PROTOCOL_VERSION) badSync(`unsupported protocol version ${version - 0x60}`);
      const refine: WorkItem[] = [];
      for (const item of resumeAfterCut(readRanges(input, MAX_RANGES_PER_MESSAGE), to.sent)) {
        if (item.kind === "resend" || item.mode === Mode.Fingerprint) {
          refine.push(item);
          continue;
        }
        const theirs = new Set(item.ids);
        for await (const page of this.pages(item.lower, item.upper)) {
          this.scanned += page.length;
          for (const entry of page) if (!theirs.delete(entry.id)) have.push(entry.id);
        }
        for (const id of theirs) need.push(id);
      }
      this.pending = mergeByBound(this.pending, refine);
      return { have, need };
    });
  }

  /**
   * Pipelined initiator: the next message, as many pending ranges compared
   * and split as fit one frame (the rest wait for the message after), or
   * undefined when no range differs any more.
   */
  next(): Promise<InitiatorMessage | undefined> {
    return this.exclusively(async () => {
      const full = new ByteWriter();
      full.byte(PROTOCOL_VERSION);
      const coder = new BoundCoder();
      const sent: SentRange[] = [];
      let at = MIN_BOUND; // where the message written so far ends
      let done = 0;
      const scannedBefore = this.scanned;
      for (; done < this.pending.length; done++) {
        if (this.readsPerMessage !== 0 && this.scanned - scannedBefore >= this.readsPerMessage && full.length > 1) break;
        const item = this.pending[done]!;
        const ours = await this.fingerprint(item.lower, item.upper);
        if (item.kind === "input" && ours.fingerprint === item.fingerprint) continue;
        // Written aside and appended if it fits (the coder's state after a write that does not fit no longer matters: we stop).
        const o = new ByteWriter();
        const written: SentRange[] = [];
        if (compareBounds(at, item.lower) < 0) {
          coder.write(o, item.lower);
          o.varint(Mode.Skip);
        }
        if (item.kind === "input") {
          await this.splitRange(item.lower, item.upper, ours.count, o, coder, written);
        } else if (item.mode === Mode.Fingerprint) {
          this.write(o, coder, item.lower, item.upper, Mode.Fingerprint, ours.fingerprint, written);
        } else {
          await this.splitRange(item.lower, item.upper, Math.min(ours.count, this.idListBelow - 1), o, coder, written);
        }
        if (this.exceeded(full.length + o.length) && full.length > 1) break;
        full.append(o);
        for (const range of written) sent.push(range);
        at = item.upper;
      }
      this.pending = done === this.pending.length ? [] : this.pending.slice(done);
      return full.length === 1 ? undefined : { message: full.view().slice(), sent };
    });
  }

  private exclusively<T>(step: () => Promise<T>): Promise<T> {
    const run = this.turn.then(step, step);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** Writes one range [lower, upper) with a fingerprint or ids, noting it in `sink` (the initiator's sent ranges). */
  private write(out: ByteWriter, coder: BoundCoder, lower: Bound, upper: Bound, mode: Mode.Fingerprint | Mode.IdList, payload: string | string[], sink?: SentRange[]): void {
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
    return this.source.scanCached?.(lower, upper) ?? this.source.scanPages?.(lower, upper) ?? singles(this.source.scan(lower, upper));
  }

  private exceeded(n: number): boolean {
    return this.frameLimit !== 0 && n > this.frameLimit - FRAME_MARGIN;
  }

  /**
   * One fingerprinted range (lower, ∞) closing a message that reached the
   * frame limit. Its fingerprint is random, not the sum of our items there
   * (summing scanned the rest of the set for every full frame: ~N² / ids per
   * frame items for a catch-up of N). It matches the peer's only with
   * probability 2^-128, so the peer reconciles the range as a differing one.
   */
  private remainder(out: ByteWriter, coder: BoundCoder): void {
    const random = new Uint8Array(FINGERPRINT_SIZE);
    globalThis.crypto.getRandomValues(random);
    coder.write(out, INFINITY_BOUND);
    out.varint(Mode.Fingerprint);
    out.hex(Array.from(random, (b) => b.toString(16).padStart(2, "0")).join(""));
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
    coder.write(out, end);
    out.varint(Mode.IdList);
    out.varint(ids.length);
    for (const id of ids) out.hex(id);
    return end;
  }

  private async fingerprint(lower: Bound, upper: Bound): Promise<{ fingerprint: string; count: number }> {
    const acc = new Accumulator();
    if (this.source.sum) this.scanned += this.source.sumCached?.(lower, upper, acc) ?? (await this.source.sum(lower, upper, acc));
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

async function* singles(items: AsyncIterable<Item>): AsyncGenerator<readonly Item[]> {
  for await (const item of items) yield [item];
}
