import type { Clock } from "../base/clock.js";
import { ErrorCode, errorText } from "../base/errors.js";
import { CloseCode, Connection, type ConnectionInfo, lingerThenDestroy } from "./connection.js";
import { type Heartbeat, type HeartbeatSweep, sweepFor } from "./heartbeat-sweep.js";
import type { InboundBudget, InboundHolder } from "./inbound-budget.js";
import { FrameDecoder, FrameKind, decodeClose, encodeClose, encodeFrame, encodeMessage, encodeMessageParts } from "./stream-framing.js";

/**
 * The duplex byte stream a StreamConnection needs: a Node `net.Socket`, a
 * streamx stream (a Hyperswarm socket), a pipe. Nothing else is assumed.
 */
export interface ByteStream {
  write(data: Uint8Array): unknown;
  end(): unknown;
  destroy(err?: Error): unknown;
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  removeAllListeners?(event?: string): unknown;
  /** Flow control, when the stream has it (net and streamx streams do): used for backpressure. */
  pause?(): unknown;
  resume?(): unknown;
  readonly destroyed?: boolean;
}

export interface StreamConnectionOptions {
  maxMessageBytes: number;
  /** ms between heartbeat pings; a link silent for a whole interval after a ping is dropped. 0/Infinity = off. */
  heartbeatInterval: number;
  /** The transport's sweep (one timer for all its links); without it the link gets a sweep of its own (`heartbeatInterval` on `clock`). */
  heartbeat?: HeartbeatSweep;
  clock?: Clock;
  /** How long a closing link waits for the peer to end the stream before destroying it (ms). */
  lingerMs?: number;
  /** The transport's bound on bytes held for unfinished frames over all its links. */
  inbound?: InboundBudget;
}

/** Closes with no close frame from the peer (WebSocket's 1006). */
export const ABNORMAL_CLOSE = 1006;

/** Made on first use: this module is in the browser bundle, where there is no Buffer at load time. */
let pong: Buffer | undefined;

/**
 * ToolDb frames on any duplex byte stream (see stream-framing.ts), with the
 * same behaviour as WsConnection: size limit (refused + close 1009), close
 * code and reason delivered to the peer, and a ping/pong heartbeat visited
 * by the transport's HeartbeatSweep (no timer per link).
 */
export class StreamConnection extends Connection implements Heartbeat, InboundHolder {
  private readonly heartbeat: HeartbeatSweep;
  private readonly inbound: InboundBudget | undefined;
  private readonly decoder: FrameDecoder;
  private readonly lingerMs: number;
  private alive = true;
  /** Pings left unanswered because earlier writes still waited in the stream (tests read it). */
  pongsSkipped = 0;

  constructor(
    private readonly stream: ByteStream,
    info: ConnectionInfo,
    options: StreamConnectionOptions,
  ) {
    super(info);
    this.heartbeat = sweepFor(options.heartbeat ?? options.heartbeatInterval, options.clock);
    this.decoder = new FrameDecoder(options.maxMessageBytes);
    this.lingerMs = options.lingerMs ?? 1000;
    this.inbound = options.inbound;
    stream.on("data", (chunk) => this.onData(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
    stream.on("end", () => this.gone(ABNORMAL_CLOSE, "stream ended without a close frame"));
    stream.on("close", () => this.gone(ABNORMAL_CLOSE, "stream closed without a close frame"));
    // 'close' follows 'error' on net and streamx streams.
    stream.on("error", (err) => this.gone(ABNORMAL_CLOSE, `stream error: ${errorText(err)}`));
    this.heartbeat.add(this);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.alive = true;
    this.heard(this.heartbeat);
    const result = this.decoder.push(chunk);
    for (const frame of result.frames) {
      if (this.closed) return;
      this.onFrame(frame.kind, frame.payload);
    }
    if (!result.ok && !this.closed) {
      this.emit("refused", ErrorCode.FRAME_TOO_LARGE, `frame too large (${result.declared} bytes announced)`);
      this.close(CloseCode.TOO_LARGE, "frame too large");
    }
    if (!this.closed) this.inbound?.update(this, this.decoder.heldBytes);
  }

  /** This link holds the most of an unfinished frame while the transport's links together hold too much. */
  overBudget(): void {
    if (this.closed) return;
    this.emit("refused", ErrorCode.MEMORY_LIMIT, `unfinished frame of ${this.decoder.pendingBytes} bytes (${this.decoder.heldBytes} bytes of memory) held while the links' unfinished frames are over the budget`);
    this.close(CloseCode.OVERLOADED, "unfinished frames over the budget");
  }

  private onFrame(kind: number, payload: Buffer): void {
    switch (kind) {
      case FrameKind.MESSAGE:
        this.emit("message", payload.toString("utf8"));
        return;
      case FrameKind.PING:
        // Answered only while nothing waits unwritten: a peer that pings and never reads would
        // otherwise queue a pong per 5-byte ping here, unbounded (the bytes it sees prove the link alive anyway).
        if (queuedBytes(this.stream) === 0) this.write((pong ??= encodeFrame(FrameKind.PONG)));
        else this.pongsSkipped++;
        return;
      case FrameKind.PONG:
        return;
      case FrameKind.CLOSE: {
        const { code, reason } = decodeClose(payload);
        this.stream.end();
        lingerThenDestroy(this.stream, this.lingerMs);
        this.finish(code, reason);
        return;
      }
      default:
        this.emit("refused", ErrorCode.BAD_MESSAGE, `unknown frame kind ${kind}`);
        this.close(CloseCode.BAD_MESSAGE, "unknown frame kind");
    }
  }

  /** Called by the sweep. */
  beat(): void {
    // While we do not read (backpressure), the peer's pongs wait unread: not a dead link.
    if (!this.alive && !this.paused) {
      this.stream.destroy();
      this.finish(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout");
      return;
    }
    this.alive = false;
    this.write(encodeFrame(FrameKind.PING));
  }

  /** The stream went away underneath us. */
  private gone(code: number, reason: string): void {
    if (this.closed) return;
    this.stream.destroy();
    this.finish(code, reason);
  }

  private finish(code: number, reason: string): void {
    this.heartbeat.delete(this);
    this.decoder.reset();
    this.inbound?.update(this, 0);
    this.markClosed(code, reason);
  }

  private write(data: Buffer): void {
    if (this.stream.destroyed) return;
    try {
      this.stream.write(data);
    } catch (err) {
      this.gone(ABNORMAL_CLOSE, `write failed: ${errorText(err)}`);
    }
  }


  private paused = false;

  override pause(): void {
    this.paused = true;
    this.stream.pause?.();
  }

  override get sendBacklog(): number {
    // An encrypted stream (Hyperswarm) queues in itself and in the raw stream beneath it.
    const raw = (this.stream as { rawStream?: unknown }).rawStream;
    return queuedBytes(this.stream) + (raw ? queuedBytes(raw) : 0);
  }

  override resume(): void {
    this.paused = false;
    this.alive = true;
    this.heard(this.heartbeat, false);
    this.stream.resume?.();
  }

  protected _send(frame: string): void {
    this.write(encodeMessage(frame));
  }

  protected override _sendParts(parts: readonly string[]): void {
    for (const chunk of encodeMessageParts(parts)) this.write(chunk);
  }

  protected override _abort(code: number, reason: string): void {
    this.stream.destroy();
    this.finish(code, reason);
  }

  protected _close(code: number, reason: string): void {
    this.write(encodeClose(code, reason));
    try {
      this.stream.end();
    } catch {
      this.stream.destroy();
    }
    lingerThenDestroy(this.stream, this.lingerMs);
    // Report our own code and reason locally, at once (as WsConnection does).
    this.finish(code, reason);
  }
}

/** Bytes a stream holds unwritten: Node's `writableLength`, or a streamx stream's buffered count. */
function queuedBytes(stream: unknown): number {
  const s = stream as { writableLength?: number; _writableState?: { buffered?: number } | null };
  return s.writableLength ?? s._writableState?.buffered ?? 0;
}
