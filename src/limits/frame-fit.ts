/**
 * What a peer accepts, and the room every frame this node builds needs: the
 * one rule that relay, sync ranges, sync fetches and query answers follow,
 * so no path builds a frame its receiver must refuse (FRAME_TOO_LARGE, and
 * the link dropped). Receivers take frames of up to `maxMessageBytes` UTF-8
 * bytes (WebSocket payloads and stream frames are counted in bytes); every
 * node of a topic is assumed to use the same value.
 *
 * The largest record allowed sets the headroom: a record is stored and sent
 * only if its JSON fits `maxRecordBytes`, and that is chosen so that the
 * fullest frame that carries one record still fits: the envelope around it
 * (type, id, the `to` hop list at its longest, `ack`) plus, in a sync fetch
 * answer, the ids the answer could not fit besides that record.
 */
import { ErrorCode, ToolDbError } from "../base/errors.js";

/** Everything around the records of a frame: type, id (64), `to` at 16 hops of 128 characters, `ack`, field names. */
export const ENVELOPE_BYTES = 4096;
/** With frames too small for that (tiny limits), the envelope takes at most this share of a frame. */
const SMALL_FRAME_ENVELOPE_SHARE = 1 / 16;
/** By default the ids a fetch answer may list beside a record take at most this share of the room. */
const FETCH_IDS_SHARE = 1 / 8;
/** One item id in a JSON list: 64 hex digits, quotes and a comma. */
export const SYNC_ID_BYTES = 67;
/** Ids asked for in one sync fetch at most. */
export const MAX_IDS_PER_FETCH = 1024;
/** Ids in one sync message at most (the wire's cap, LIMITS.maxSyncIds). */
const MAX_IDS_PER_MESSAGE = 4096;
/** Keys in one query answer at most (the wire's cap, LIMITS.maxQueryKeys). */
const MAX_KEYS_PER_ANSWER = 10_000;

export interface FrameFitOptions {
  maxMessageBytes: number;
  /** The largest record's JSON in bytes; by default what leaves room for a full fetch answer beside it. */
  maxRecordBytes?: number;
}

/** Node's native UTF-8 length (Buffer is a global there); browsers count in JS. */
const nativeByteLength = (globalThis as { Buffer?: { byteLength(text: string, encoding: "utf8"): number } }).Buffer?.byteLength;

/** UTF-8 length of a string (lone surrogates, which JSON text never holds unescaped, count as 3). */
export function utf8Length(text: string): number {
  // A frame near the limit is a megabyte: counting it char by char in JS took ~9 ms, natively well under 1.
  if (nativeByteLength) return nativeByteLength(text, "utf8");
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: 4 bytes for 2 code units
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * Browsers only: the last string scanned by fitsBytes and its length (one
 * relayed frame is checked for each of its receivers). Not on Node, where
 * counting is cheaper than comparing two different megabyte strings.
 */
let lastScanned: { text: string; bytes: number } | undefined;

/** True when `text` takes at most `limit` UTF-8 bytes; scans only when its length leaves doubt. */
export function fitsBytes(text: string, limit: number): boolean {
  if (text.length * 3 <= limit) return true;
  if (text.length > limit) return false;
  if (nativeByteLength) return nativeByteLength(text, "utf8") <= limit;
  if (lastScanned?.text !== text) lastScanned = { text, bytes: utf8Length(text) };
  return lastScanned.bytes <= limit;
}

export class FrameFit {
  readonly maxFrameBytes: number;
  /** Largest record JSON (bytes) stored or sent: any frame carrying one fits. */
  readonly maxRecordBytes: number;
  /** Ids per sync fetch: the answer holds a largest record and the rest of the ids beside it. */
  readonly idsPerFetch: number;

  /** Bytes of a frame kept for its envelope. */
  readonly envelopeBytes: number;

  constructor(options: FrameFitOptions) {
    const max = options.maxMessageBytes;
    this.envelopeBytes = Math.min(ENVELOPE_BYTES, Math.floor(max * SMALL_FRAME_ENVELOPE_SHARE));
    const room = max - this.envelopeBytes;
    if (!Number.isFinite(room) || room < 2 * SYNC_ID_BYTES) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `maxMessageBytes must be at least ${Math.ceil((2 * SYNC_ID_BYTES) / (1 - SMALL_FRAME_ENVELOPE_SHARE))}`);
    }
    this.maxFrameBytes = max;
    if (options.maxRecordBytes === undefined) {
      this.idsPerFetch = clamp(Math.floor((room * FETCH_IDS_SHARE) / SYNC_ID_BYTES), 1, MAX_IDS_PER_FETCH);
      this.maxRecordBytes = room - this.idsPerFetch * SYNC_ID_BYTES;
    } else {
      if (!(options.maxRecordBytes > 0 && options.maxRecordBytes <= room - SYNC_ID_BYTES)) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `maxRecordBytes must be in [1, ${room - SYNC_ID_BYTES}] with maxMessageBytes ${options.maxMessageBytes}`);
      }
      this.maxRecordBytes = options.maxRecordBytes;
      this.idsPerFetch = clamp(Math.floor((room - this.maxRecordBytes) / SYNC_ID_BYTES), 1, MAX_IDS_PER_FETCH);
    }
  }

  /** Bytes of records (and of the ids listed beside them) in one sync frame. */
  get recordBudget(): number {
    return this.maxFrameBytes - this.envelopeBytes;
  }

  /** Bytes of one negentropy message before base64 (4 characters for 3) and its envelope (the reconciler's floor: 4096). */
  get rangeMessageBytes(): number {
    return Math.max(4096, Math.floor((this.recordBudget / 4) * 3));
  }

  /** Ids in one sync message that lists ids only (the change feed's pages and offers): at most half a frame. */
  get idsPerMessage(): number {
    return clamp(Math.floor(this.recordBudget / 2 / SYNC_ID_BYTES), 1, MAX_IDS_PER_MESSAGE);
  }

  /** True when a record's JSON is within the largest record allowed. */
  recordFits(json: string): boolean {
    return fitsBytes(json, this.maxRecordBytes);
  }

  /** True when a whole frame fits what a receiver accepts. */
  frameFits(frame: string): boolean {
    return fitsBytes(frame, this.maxFrameBytes);
  }

  /** How many of `keys` (from the first) one query answer carries: within the frame and the wire's count. */
  keysThatFit(keys: readonly string[]): number {
    let bytes = 0;
    const max = Math.min(keys.length, MAX_KEYS_PER_ANSWER);
    for (let i = 0; i < max; i++) {
      bytes += utf8Length(JSON.stringify(keys[i])) + 1;
      if (bytes > this.recordBudget) return i;
    }
    return max;
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}
