/**
 * Negentropy protocol V1 wire pieces (docs/negentropy-protocol-v1.md in
 * hoytech/negentropy): varints, bounds, the 256-bit id accumulator and the
 * range fingerprint. Written from the published spec; platform-free (SHA-256
 * from crypto/sha256: OpenSSL on Node, @noble/hashes elsewhere).
 */
import { bytesToHex } from "../../crypto/encoding.js";
import { ErrorCode, ToolDbError } from "../../base/errors.js";
import { sha256HexOfBytes } from "../../crypto/sha256.js";

export const PROTOCOL_VERSION = 0x61;
export const ID_SIZE = 32;
export const FINGERPRINT_SIZE = 16;
/** Timestamps are integers in [0, MAX_TIMESTAMP]; the spec's infinity (2^64 - 1) is `Infinity` here. */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

export const enum Mode {
  Skip = 0,
  Fingerprint = 1,
  IdList = 2,
}

/** An item: a timestamp and a 32-byte id as 64 lowercase hex digits. */
export interface Item {
  t: number;
  id: string;
}

/** A range boundary: timestamp (or Infinity) and an id prefix (hex, 0..64 digits, implicitly zero-padded). */
export interface Bound {
  t: number;
  id: string;
}

export const MIN_BOUND: Bound = { t: 0, id: "" };
export const INFINITY_BOUND: Bound = { t: Infinity, id: "" };

export function badSync(reason: string): never {
  throw new ToolDbError(ErrorCode.BAD_MESSAGE, `reconciliation: ${reason}`);
}

/** Growable byte buffer for building one message. */
export class ByteWriter {
  // Small at first: a responder writes each range into a writer of its own (most hold a bound and a fingerprint).
  private buf = new Uint8Array(64);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  bytes(src: Uint8Array): void {
    this.reserve(src.length);
    this.buf.set(src, this.length);
    this.length += src.length;
  }

  hex(src: string): void {
    this.reserve(src.length / 2);
    for (let i = 0; i < src.length; i += 2) this.buf[this.length++] = (nibble(src.charCodeAt(i)) << 4) | nibble(src.charCodeAt(i + 1));
  }

  varint(n: number): void {
    // Base-128, most significant digit first; arithmetic (not bit ops) so values above 2^32 work.
    const digits: number[] = [];
    do {
      digits.push(n % 128);
      n = Math.floor(n / 128);
    } while (n > 0);
    for (let i = digits.length - 1; i >= 0; i--) this.byte(digits[i]! | (i > 0 ? 0x80 : 0));
  }

  append(other: ByteWriter): void {
    this.bytes(other.view());
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Reads one message; every read is bounds-checked (input comes from peers). */
export class ByteReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(): number {
    if (this.pos >= this.buf.length) badSync("message ends early");
    return this.buf[this.pos++]!;
  }

  hex(n: number): string {
    if (this.pos + n > this.buf.length) badSync("message ends early");
    const out = bytesToHex(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** Passes over `n` bytes unread. */
  skip(n: number): void {
    if (this.pos + n > this.buf.length) badSync("message ends early");
    this.pos += n;
  }

  varint(): number {
    let n = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      n = n * 128 + (b & 0x7f);
      if (n > Number.MAX_SAFE_INTEGER) badSync("varint too large");
      if ((b & 0x80) === 0) return n;
    }
    badSync("varint too long");
  }
}

/**
 * The ranges of a message (skips included), counted without decoding their
 * bounds or payloads, up to `max` (a responder answers no more of one
 * message: the rest goes back as a remainder, unread). Throws BAD_MESSAGE
 * for a message whose structure does not hold within them (the full read
 * checks the rest).
 */
export function countRanges(message: Uint8Array, max: number): number {
  const input = new ByteReader(message);
  const version = input.byte();
  if (version !== PROTOCOL_VERSION) return 0; // answered with our version alone
  let ranges = 0;
  while (input.remaining > 0) {
    if (++ranges > max) return max;
    input.varint(); // the bound's timestamp
    const len = input.varint();
    if (len > ID_SIZE) badSync("bound id prefix longer than 32 bytes");
    input.skip(len);
    const mode = input.varint();
    if (mode === Mode.Fingerprint) input.skip(FINGERPRINT_SIZE);
    else if (mode === Mode.IdList) {
      const n = input.varint();
      if (n * ID_SIZE > input.remaining) badSync("id list longer than the message");
      input.skip(n * ID_SIZE);
    } else if (mode !== Mode.Skip) badSync(`unknown range mode ${mode}`);
  }
  return ranges;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  badSync("invalid hex");
}

/** Order of items and bounds: timestamp, then id bytes (hex compares the same way). */
export function compareBounds(a: Bound, b: Bound): number {
  if (a.t !== b.t) return a.t < b.t ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The shortest bound that separates `prev` from `curr` (prev < curr), per the spec. */
export function minimalBound(prev: Item, curr: Item): Bound {
  if (curr.t !== prev.t) return { t: curr.t, id: "" };
  let shared = 0;
  while (shared < ID_SIZE && curr.id.slice(2 * shared, 2 * shared + 2) === prev.id.slice(2 * shared, 2 * shared + 2)) shared++;
  return { t: curr.t, id: curr.id.slice(0, 2 * (shared + 1)) };
}

/** Value of a hex digit by character code, -1 for anything else. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(d)] = d;
  HEX_VALUE["0123456789ABCDEF".charCodeAt(d)] = d;
}

/**
 * Limb j (32 bits) of an id as a little-endian 256-bit number: bytes
 * 4j..4j+3, the last the most significant. Read digit by digit (a slice
 * and parseInt per limb was a tenth of a reconciliation round's CPU).
 */
function limbOf(idHex: string, j: number): number {
  let limb = 0;
  for (let k = 8 * j + 6; k >= 8 * j; k -= 2) {
    const hi = HEX_VALUE[idHex.charCodeAt(k)];
    const lo = HEX_VALUE[idHex.charCodeAt(k + 1)];
    if (hi === undefined || lo === undefined || hi < 0 || lo < 0) badSync("invalid id");
    limb = (limb << 8) | (hi << 4) | lo;
  }
  return limb >>> 0;
}

/** A fingerprint's input: the 32-byte sum and the count's varint (at most 8 bytes below 2^53). */
const FINGERPRINT_INPUT = new Uint8Array(ID_SIZE + 8);
const FINGERPRINT_VIEW = new DataView(FINGERPRINT_INPUT.buffer);

/** Sum of ids mod 2^256 (little-endian), as eight 32-bit limbs. */
export class Accumulator {
  private readonly limbs = new Uint32Array(8);
  count = 0;

  add(idHex: string): void {
    let carry = 0;
    for (let j = 0; j < 8; j++) {
      const sum = this.limbs[j]! + limbOf(idHex, j) + carry;
      this.limbs[j] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    this.count++;
  }

  /** Takes an id out again (the sum is mod 2^256, so this is exact). */
  remove(idHex: string): void {
    let borrow = 0;
    for (let j = 0; j < 8; j++) {
      const diff = this.limbs[j]! - limbOf(idHex, j) - borrow;
      this.limbs[j] = diff >>> 0;
      borrow = diff < 0 ? 1 : 0;
    }
    this.count--;
  }

  /** Adds another accumulator's ids (sum and count). */
  merge(other: Accumulator): void {
    let carry = 0;
    for (let j = 0; j < 8; j++) {
      const sum = this.limbs[j]! + other.limbs[j]! + carry;
      this.limbs[j] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    this.count += other.count;
  }

  reset(): void {
    this.limbs.fill(0);
    this.count = 0;
  }

  /**
   * SHA-256(sum || varint(count)), first 16 bytes, as hex. Hashed
   * synchronously: a reconciliation round computes thousands, and WebCrypto's
   * digest would make each a job on libuv's pool, queued behind the
   * signature checks of a catch-up.
   */
  fingerprint(): string {
    // One scratch buffer for all (hashed synchronously, so never shared between two calls).
    for (let j = 0; j < 8; j++) FINGERPRINT_VIEW.setUint32(4 * j, this.limbs[j]!, true);
    let at = ID_SIZE;
    // The count as a varint, most significant digit first (as ByteWriter.varint).
    let digits = 1;
    for (let n = Math.floor(this.count / 128); n > 0; n = Math.floor(n / 128)) digits++;
    for (let i = digits - 1, n = this.count; i >= 0; i--, n = Math.floor(n / 128)) FINGERPRINT_INPUT[at + i] = (n % 128) | (i < digits - 1 ? 0x80 : 0);
    at += digits;
    return sha256HexOfBytes(FINGERPRINT_INPUT.subarray(0, at)).slice(0, 2 * FINGERPRINT_SIZE);
  }
}

/** Per-message timestamp delta coding of bounds (the spec's encodedTimestamp). */
export class BoundCoder {
  private lastOut = 0;
  private lastIn = 0;

  write(w: ByteWriter, bound: Bound): void {
    if (bound.t === Infinity) {
      this.lastOut = Infinity;
      w.varint(0);
    } else {
      w.varint(bound.t - this.lastOut + 1);
      this.lastOut = bound.t;
    }
    w.varint(bound.id.length / 2);
    w.hex(bound.id);
  }

  read(r: ByteReader): Bound {
    const encoded = r.varint();
    let t: number;
    if (encoded === 0 || this.lastIn === Infinity) t = Infinity;
    else t = Math.min(this.lastIn + encoded - 1, Number.MAX_SAFE_INTEGER);
    this.lastIn = t;
    const len = r.varint();
    if (len > ID_SIZE) badSync("bound id prefix longer than 32 bytes");
    return { t, id: r.hex(len) };
  }
}

/**
 * Items a source read from its store besides those it returned: the rest of
 * each bucket it read whole, and the buckets it read ahead (range-sums.ts).
 * A reconciler counts them as its work (a range ending one bucket in eight
 * read 256 for no item returned).
 */
export interface StoreReads {
  extra: number;
}

/**
 * Sorted items; `scan` yields those in [lower, upper) in (timestamp, id) order.
 * A source may also keep sums by range (`sum` adds a range's ids to an
 * accumulator, returning the entries it read) and offer bounds to split a
 * long range at (`splitPoints`), so that neither needs a full scan.
 */
export interface ItemSource {
  scan(lower: Bound, upper: Bound): AsyncIterable<Item>;
  /** The same items a page at a time (one promise a page: reconciliation reads many short ranges). */
  scanPages?(lower: Bound, upper: Bound, reads?: StoreReads): AsyncIterable<readonly Item[]>;
  /** Without waiting: the items in pages, or undefined when the source would have to read them. */
  scanCached?(lower: Bound, upper: Bound): (readonly Item[])[] | undefined;
  /** Without waiting: `sum`, or undefined (and `acc` untouched) when the source would have to read. */
  sumCached?(lower: Bound, upper: Bound, acc: Accumulator): number | undefined;
  sum?(lower: Bound, upper: Bound, acc: Accumulator, reads?: StoreReads): Promise<number>;
  splitPoints?(lower: Bound, upper: Bound, parts: number): Promise<Bound[] | undefined>;
}

/**
 * One fingerprinted range (lower, ∞) closing a message that reached the
 * frame limit. Its fingerprint is random, not the sum of our items there
 * (summing scanned the rest of the set for every full frame: ~N² / ids per
 * frame items for a catch-up of N). It matches the peer's only with
 * probability 2^-128, so the peer reconciles the range as a differing one.
 */
export function writeRemainder(out: ByteWriter, coder: BoundCoder): void {
  const random = new Uint8Array(FINGERPRINT_SIZE);
  globalThis.crypto.getRandomValues(random);
  coder.write(out, INFINITY_BOUND);
  out.varint(Mode.Fingerprint);
  out.hex(Array.from(random, (b) => b.toString(16).padStart(2, "0")).join(""));
}

/** Items one a page (for a source that has no pages). */
export async function* singles(items: AsyncIterable<Item>): AsyncGenerator<readonly Item[]> {
  for await (const item of items) yield [item];
}
