/**
 * Length-prefixed framing of ToolDb messages on a byte stream:
 *
 *   u32 big-endian length of the rest | u8 kind | payload
 *
 * kind 0: a ToolDb message (UTF-8 JSON text, as a WebSocket text frame);
 * kind 1: close (u16 code, UTF-8 reason), the stream counterpart of a WebSocket close frame;
 * kind 2/3: heartbeat ping/pong (empty), the counterpart of WebSocket ping/pong.
 */
export const FrameKind = { MESSAGE: 0, CLOSE: 1, PING: 2, PONG: 3 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const HEADER_BYTES = 4;
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
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): DecodeResult {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Array<{ kind: number; payload: Buffer }> = [];
    while (this.buffered >= HEADER_BYTES) {
      const length = this.header().readUInt32BE(0);
      // length counts the kind byte; a message payload may be maxFrameBytes long.
      if (length === 0 || length - 1 > this.maxFrameBytes) {
        this.reset();
        return { ok: false, declared: length, frames };
      }
      // Concatenate only once the whole frame is here (no quadratic copying of a frame in many chunks).
      if (this.buffered < HEADER_BYTES + length) break;
      const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      frames.push({ kind: data[HEADER_BYTES]!, payload: data.subarray(HEADER_BYTES + 1, HEADER_BYTES + length) });
      const rest = data.subarray(HEADER_BYTES + length);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
    // What waits for the next frame is copied out of a buffer much larger than it: a view would pin a
    // whole joined frame (up to maxFrameBytes) while pendingBytes counted only the few bytes after it.
    const first = this.chunks[0];
    if (first && first.length * 2 < first.buffer.byteLength) this.chunks[0] = Buffer.from(first);
    return { ok: true, frames };
  }

  private header(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= HEADER_BYTES) return first;
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined;
  }

  reset(): void {
    this.chunks = [];
    this.buffered = 0;
  }
}
