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
const EMPTY = new Uint8Array(0);
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

/** Reads shorter than this are copied into a spill buffer rather than kept as Buffers of their own. */
const COALESCE_BELOW = 4096;
/** Spill buffers start at this size and double up to SPILL_MAX (never past the frame's missing bytes once known). */
const SPILL_MIN = 1024;
const SPILL_MAX = 64 * 1024;

/**
 * Reassembles frames from chunks. At most one partial frame is buffered, and
 * never more than `maxFrameBytes` of it: a header announcing a larger frame
 * fails at once, before its body arrives.
 *
 * A frame sent a byte at a time arrives as a read per byte, each a Buffer
 * of its own (some 400 bytes of memory for one byte of frame): reads
 * shorter than COALESCE_BELOW are copied into spill buffers sized to what
 * the frame still lacks, so the parts kept are few, and `heldBytes` (what
 * the inbound budget is charged) counts their capacity and a per-part
 * overhead, not only the frame's bytes.
 */
export class FrameDecoder {
  /** Parts of the unfinished frame kept as they came (or closed spills), in order, before `spill`. */
  private chunks: Buffer[] = [];
  /** Where short reads are copied; its first `spillUsed` bytes follow `chunks`. */
  private spill: Buffer | undefined;
  private spillUsed = 0;
  private spillSize = SPILL_MIN;
  private buffered = 0;
  private held = 0;
  /** The unfinished frame's whole size (header included) once its header is here; 0 before. */
  private need = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes of an incomplete frame received. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Memory held for the incomplete frame: buffers' capacity plus a per-buffer overhead. */
  get heldBytes(): number {
    return this.held;
  }

  push(chunk: Buffer): DecodeResult {
    if (this.buffered === 0) return this.decode(chunk);
    this.keep(chunk);
    if (this.need === 0) {
      if (this.buffered < HEADER_BYTES) return { ok: true, frames: [] };
      const length = this.headerLength();
      if (length === 0 || length - 1 > this.maxFrameBytes) {
        this.reset();
        return { ok: false, declared: length, frames: [] };
      }
      this.need = HEADER_BYTES + length;
    }
    if (this.buffered < this.need) return { ok: true, frames: [] };
    // Joined only once the whole frame is here (no quadratic copying of a frame in many parts).
    const data = this.take();
    this.reset();
    return this.decode(data);
  }

  /** Frames straight out of `data` (nothing pending): the unfinished rest is kept. */
  private decode(data: Buffer): DecodeResult {
    const frames: Array<{ kind: number; payload: Buffer }> = [];
    let offset = 0;
    while (data.length - offset >= HEADER_BYTES) {
      const length = data.readUInt32BE(offset);
      // length counts the kind byte; a message payload may be maxFrameBytes long.
      if (length === 0 || length - 1 > this.maxFrameBytes) {
        this.reset();
        return { ok: false, declared: length, frames };
      }
      const end = offset + HEADER_BYTES + length;
      if (end > data.length) {
        this.need = HEADER_BYTES + length;
        break;
      }
      frames.push({ kind: data[offset + HEADER_BYTES]!, payload: data.subarray(offset + HEADER_BYTES + 1, end) });
      offset = end;
    }
    if (offset < data.length) this.keep(offset === 0 ? data : data.subarray(offset));
    return { ok: true, frames };
  }

  private keep(part: Buffer): void {
    if (part.length < COALESCE_BELOW) return this.copyIn(part);
    // A view of a buffer much larger than it (the rest of a joined frame) is copied out: it would pin the whole buffer.
    if (part.length * 2 < part.buffer.byteLength) part = Buffer.from(part);
    this.closeSpill();
    this.chunks.push(part);
    this.buffered += part.length;
    this.held += part.length + CHUNK_OVERHEAD_BYTES;
  }

  private copyIn(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) {
      if (!this.spill || this.spillUsed === this.spill.length) this.newSpill(bytes.length - offset);
      const n = bytes.copy(this.spill!, this.spillUsed, offset);
      this.spillUsed += n;
      this.buffered += n;
      offset += n;
    }
  }

  private newSpill(left: number): void {
    this.closeSpill();
    const wanted = this.need > 0 ? this.need - this.buffered : SPILL_MIN;
    const size = Math.max(left, Math.min(wanted, this.spillSize));
    this.spillSize = Math.min(SPILL_MAX, this.spillSize * 2);
    // Not from the shared pool: a small spill would pin (and be charged less than) an 8 KiB pool slab.
    this.spill = Buffer.allocUnsafeSlow(size);
    this.spillUsed = 0;
    this.held += size + CHUNK_OVERHEAD_BYTES;
  }

  private closeSpill(): void {
    if (this.spill && this.spillUsed > 0) this.chunks.push(this.spill.subarray(0, this.spillUsed));
    this.spill = undefined;
  }

  /** The pending bytes as one buffer (no copy when they are in one part). */
  private take(): Buffer {
    const spill = this.spill?.subarray(0, this.spillUsed);
    if (this.chunks.length === 0) return spill!;
    if (spill) this.chunks.push(spill);
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
  }

  /** The length field of the pending frame's header, which may lie across parts. */
  private headerLength(): number {
    let value = 0;
    let got = 0;
    for (const part of [...this.chunks, this.spill?.subarray(0, this.spillUsed) ?? EMPTY]) {
      for (let i = 0; i < part.length && got < HEADER_BYTES; i++, got++) value = value * 256 + part[i]!;
      if (got === HEADER_BYTES) break;
    }
    return value;
  }

  reset(): void {
    this.chunks = [];
    this.spill = undefined;
    this.spillUsed = 0;
    this.spillSize = SPILL_MIN;
    this.buffered = 0;
    this.held = 0;
    this.need = 0;
  }
}
