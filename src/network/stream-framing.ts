/**
 * Length-prefixed framing of ToolDb messages on a byte stream:
 *
 *   u32 big-endian length of the rest | u8 kind | payload
 *
 * kind 0: a ToolDb message (UTF-8 JSON text, as a WebSocket text frame);
 * kind 1: close (u16 code, UTF-8 reason), the stream counterpart of a WebSocket close frame;
 * kind 2/3: heartbeat ping/pong (empty), the counterpart of WebSocket ping/pong.
 */
import { CHUNK_OVERHEAD_BYTES } from "./inbound-budget.js";

export const FrameKind = { MESSAGE: 0, CLOSE: 1, PING: 2, PONG: 3 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const HEADER_BYTES = 4;
/** The least an unfinished frame's buffer starts with (it doubles from there as bytes come). */
const FIRST_BODY_BYTES = 4096;
/** Close reasons are capped like WebSocket's (123 bytes). */
const MAX_REASON_BYTES = 123;

export function encodeFrame(kind: FrameKind, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + 1 + payload.length);
  frame.writeUInt32BE(payload.length + 1, 0);
  frame[HEADER_BYTES] = kind;
  frame.set(payload, HEADER_BYTES + 1);
  return frame;
}

export function encodeMessage(text: string): Buffer {
  return encodeFrame(FrameKind.MESSAGE, Buffer.from(text, "utf8"));
}

/** A message frame given in parts: its header, then each part's bytes (no copy into one buffer). */
export function encodeMessageParts(parts: readonly string[]): Buffer[] {
  const payloads = parts.map((part) => Buffer.from(part, "utf8"));
  let bytes = 0;
  for (const p of payloads) bytes += p.length;
  const header = Buffer.allocUnsafe(HEADER_BYTES + 1);
  header.writeUInt32BE(bytes + 1, 0);
  header[HEADER_BYTES] = FrameKind.MESSAGE;
  return [header, ...payloads];
}

export function encodeClose(code: number, reason: string): Buffer {
  let r = Buffer.from(reason, "utf8");
  if (r.length > MAX_REASON_BYTES) r = Buffer.from(r.subarray(0, MAX_REASON_BYTES).toString("utf8").replace(/\uFFFD+$/, ""), "utf8");
  const payload = Buffer.allocUnsafe(2 + r.length);
  payload.writeUInt16BE(code & 0xffff, 0);
  r.copy(payload, 2);
  return encodeFrame(FrameKind.CLOSE, payload);
}

export function decodeClose(payload: Buffer): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: "" };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString("utf8") };
}

export type DecodeResult =
  | { ok: true; frames: Array<{ kind: number; payload: Buffer }> }
  | { ok: false; declared: number; frames: Array<{ kind: number; payload: Buffer }> };

/**
 * Reassembles frames from chunks. At most one partial frame is buffered, and
 * never more than `maxFrameBytes` of it: a header announcing a larger frame
 * fails at once, before its body arrives.
 *
 * Frames complete in a read are taken out of it as they are (views, no
 * copy). An unfinished frame goes into ONE buffer, and every later read is
 * copied into it, long or short: a frame sent a byte at a time arrives as a
 * read per byte, each a Buffer of its own (some 400 bytes of memory for one
 * byte of frame), and none of them is kept. The buffer starts at what the
 * first read brought (at least FIRST_BODY_BYTES) and doubles as bytes come,
 * never past the length the header announced: a peer is charged about what
 * it sent, never the length it merely announced (a 4-byte header must not
 * reserve a megabyte of the budget), and copies stay linear in the frame.
 * Before the length is known, the up to 3 header bytes are kept as a
 * number. `heldBytes` (what the inbound budget is charged) is the buffer's
 * capacity and a per-buffer overhead. (The decoder before kept reads of 4
 * KiB and more as they came and copied shorter ones into spill buffers
 * growing to 64 KiB, a new one after every long read: one 1 MiB frame read
 * in alternating 1,448- and 8,192-byte reads held and was charged 7.25 MiB.)
 */
export class FrameDecoder {
  /** The unfinished frame's kind byte and payload so far, once its header is here (capacity <= `bodyLength`). */
  private body: Buffer | undefined;
  /** The length its header announced (kind byte and payload). */
  private bodyLength = 0;
  /** Bytes of `body` received. */
  private bodyUsed = 0;
  /** Bytes of the next frame's header received while it is incomplete (0-3), and their value so far. */
  private headerGot = 0;
  private headerValue = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes of an incomplete frame received (its header included). */
  get pendingBytes(): number {
    return this.body ? HEADER_BYTES + this.bodyUsed : this.headerGot;
  }

  /** Memory held for the incomplete frame: its buffer's whole length plus a per-buffer overhead (a partial header: its bytes). */
  get heldBytes(): number {
    return this.body ? this.body.length + CHUNK_OVERHEAD_BYTES : this.headerGot;
  }

  push(chunk: Buffer): DecodeResult {
    const frames: Array<{ kind: number; payload: Buffer }> = [];
    let offset = 0;
    const body = this.body;
    if (body !== undefined) {
      const take = Math.min(chunk.length, this.bodyLength - this.bodyUsed);
      const into = this.room(this.bodyUsed + take);
      offset = chunk.copy(into, this.bodyUsed, 0, take);
      this.bodyUsed += offset;
      if (this.bodyUsed < this.bodyLength) return { ok: true, frames };
      this.body = undefined;
      this.bodyUsed = 0;
      frames.push({ kind: into[0]!, payload: into.subarray(1, this.bodyLength) });
    } else if (this.headerGot > 0) {
      while (this.headerGot < HEADER_BYTES && offset < chunk.length) {
        this.headerValue = this.headerValue * 256 + chunk[offset++]!;
        this.headerGot++;
      }
      if (this.headerGot < HEADER_BYTES) return { ok: true, frames };
      const length = this.headerValue;
      this.headerGot = 0;
      this.headerValue = 0;
      const next = this.frame(chunk, offset, length, frames);
      if (next === undefined) return { ok: false, declared: length, frames };
      offset = next;
    }
    while (offset < chunk.length) {
      if (chunk.length - offset < HEADER_BYTES) {
        // The first bytes of the next frame's header: kept as a number.
        while (offset < chunk.length) {
          this.headerValue = this.headerValue * 256 + chunk[offset++]!;
          this.headerGot++;
        }
        break;
      }
      const length = chunk.readUInt32BE(offset);
      const next = this.frame(chunk, offset + HEADER_BYTES, length, frames);
      if (next === undefined) return { ok: false, declared: length, frames };
      offset = next;
    }
    return { ok: true, frames };
  }

  /**
   * The frame of `length` (its kind byte and payload) starting at `start` in `chunk`: taken out as a view when
   * complete, else copied into a buffer of its whole length. Resolves where the next frame starts (the chunk's
   * end when this one is unfinished), or undefined when the length is not allowed (the decoder is reset).
   */
  private frame(chunk: Buffer, start: number, length: number, frames: Array<{ kind: number; payload: Buffer }>): number | undefined {
    // length counts the kind byte; a message payload may be maxFrameBytes long.
    if (length === 0 || length - 1 > this.maxFrameBytes) {
      this.reset();
      return undefined;
    }
    const end = start + length;
    if (end <= chunk.length) {
      frames.push({ kind: chunk[start]!, payload: chunk.subarray(start + 1, end) });
      return end;
    }
    this.bodyLength = length;
    this.body = undefined;
    this.bodyUsed = chunk.copy(this.room(chunk.length - start), 0, start);
    return chunk.length;
  }

  /** The body buffer with room for `need` bytes: grown by doubling (at most to the announced length), what it held copied over. */
  private room(need: number): Buffer {
    const body = this.body;
    if (body !== undefined && body.length >= need) return body;
    const capacity = Math.min(this.bodyLength, Math.max(need, FIRST_BODY_BYTES, 2 * (body?.length ?? 0)));
    // Not from the shared pool: a small buffer would pin (and be charged less than) an 8 KiB pool slab.
    const grown = Buffer.allocUnsafeSlow(capacity);
    if (body !== undefined) body.copy(grown, 0, 0, this.bodyUsed);
    this.body = grown;
    return grown;
  }

  reset(): void {
    this.body = undefined;
    this.bodyLength = 0;
    this.bodyUsed = 0;
    this.headerGot = 0;
    this.headerValue = 0;
  }
}
