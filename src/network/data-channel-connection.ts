import type { Clock } from "../base/clock.js";
import { ErrorCode, errorText } from "../base/errors.js";
import { CloseCode, Connection, type ConnectionInfo, lingerThenDestroy } from "./connection.js";
import { type Heartbeat, type HeartbeatSweep, sweepFor } from "./heartbeat-sweep.js";
import { FrameKind } from "./stream-framing.js";

/**
 * A message channel with boundaries: a simple-peer instance over one
 * RTCDataChannel (what bittorrent-tracker hands out), or anything shaped so.
 */
export interface MessageChannel {
  send(data: Uint8Array): void;
  destroy(): void;
  readonly destroyed?: boolean;
  /** Bytes queued on the channel (simple-peer: the data channel's bufferedAmount). */
  readonly bufferSize?: number;
  on(event: "data", listener: (message: Uint8Array) => void): unknown;
  /** simple-peer: 'close' after destroy(), 'disconnect' when the remote end or the channel went away. */
  on(event: "close" | "disconnect", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
}

export interface DataChannelConnectionOptions {
  maxMessageBytes: number;
  /** ms between heartbeat pings; a link silent for a whole interval after a ping is dropped. 0/Infinity = off. */
  heartbeatInterval: number;
  /** The transport's sweep (one timer for all its links); without it the link gets a sweep of its own (`heartbeatInterval` on `clock`). */
  heartbeat?: HeartbeatSweep;
  clock?: Clock;
  /** How long a closing link lets the close message drain before destroying the channel (ms). */
  lingerMs?: number;
}

const ABNORMAL_CLOSE = 1006;
const MAX_REASON_BYTES = 123;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * ToolDb frames over a data channel: one channel message per frame, its first
 * byte the frame kind of the stream bridge (message, close, ping, pong), the
 * rest the payload. No length prefix (the channel keeps message boundaries)
 * and no Buffer, so it runs in browsers. Same behaviour as StreamConnection:
 * size limit, close code and reason delivered, heartbeat visited by the
 * transport's HeartbeatSweep (no timer per link).
 */
export class DataChannelConnection extends Connection implements Heartbeat {
  private readonly heartbeat: HeartbeatSweep;
  private readonly lingerMs: number;
  private alive = true;

  constructor(
    private readonly channel: MessageChannel,
    info: ConnectionInfo,
    private readonly options: DataChannelConnectionOptions,
  ) {
    super(info);
    this.heartbeat = sweepFor(options.heartbeat ?? options.heartbeatInterval, options.clock);
    this.lingerMs = options.lingerMs ?? 500;
    channel.on("data", (message) => this.onMessage(message));
    channel.on("close", () => this.gone(ABNORMAL_CLOSE, "data channel closed without a close frame"));
    channel.on("disconnect", () => this.gone(ABNORMAL_CLOSE, "data channel closed without a close frame"));
    channel.on("error", (err) => this.gone(ABNORMAL_CLOSE, `data channel error: ${errorText(err)}`));
    this.heartbeat.add(this);
  }

  private onMessage(message: Uint8Array): void {
    if (this.closed) return;
    this.alive = true;
    this.heard(this.heartbeat);
    if (!(message instanceof Uint8Array) || message.length === 0) {
      this.refuse(ErrorCode.BAD_MESSAGE, CloseCode.BAD_MESSAGE, "empty data channel message");
      return;
    }
    if (message.length - 1 > this.options.maxMessageBytes) {
      this.refuse(ErrorCode.FRAME_TOO_LARGE, CloseCode.TOO_LARGE, "frame too large");
      return;
    }
    const payload = message.subarray(1);
    switch (message[0]) {
      case FrameKind.MESSAGE:
        this.emit("message", decoder.decode(payload));
        return;
      case FrameKind.PING:
        this.write(FrameKind.PONG);
        return;
      case FrameKind.PONG:
        return;
      case FrameKind.CLOSE: {
        const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
        const code = payload.length >= 2 ? view.getUint16(0) : 1005;
        lingerThenDestroy(this.channel, this.lingerMs);
        this.finish(code, decoder.decode(payload.subarray(2)));
        return;
      }
      default:
        this.refuse(ErrorCode.BAD_MESSAGE, CloseCode.BAD_MESSAGE, `unknown frame kind ${message[0]}`);
    }
  }

  private refuse(code: ErrorCode, closeCode: number, reason: string): void {
    this.emit("refused", code, reason);
    this.close(closeCode, reason);
  }

  /** Called by the sweep. */
  beat(): void {
    if (!this.alive) {
      this.gone(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout");
      return;
    }
    this.alive = false;
    this.write(FrameKind.PING);
  }

  private gone(code: number, reason: string): void {
    if (this.closed) return;
    this.channel.destroy();
    this.finish(code, reason);
  }

  private finish(code: number, reason: string): void {
    this.heartbeat.delete(this);
    this.markClosed(code, reason);
  }

  private write(kind: FrameKind, payload: Uint8Array = new Uint8Array(0)): void {
    if (this.channel.destroyed) return;
    const message = new Uint8Array(payload.length + 1);
    message[0] = kind;
    message.set(payload, 1);
    try {
      this.channel.send(message);
    } catch (err) {
      this.gone(ABNORMAL_CLOSE, `send failed: ${errorText(err)}`);
    }
  }


  override get sendBacklog(): number {
    return this.channel.bufferSize ?? 0;
  }

  protected _send(frame: string): void {
    this.write(FrameKind.MESSAGE, encoder.encode(frame));
  }

  protected _close(code: number, reason: string): void {
    let r = encoder.encode(reason);
    if (r.length > MAX_REASON_BYTES) r = encoder.encode(decoder.decode(r.subarray(0, MAX_REASON_BYTES)).replace(/\uFFFD+$/, ""));
    const payload = new Uint8Array(2 + r.length);
    new DataView(payload.buffer).setUint16(0, code & 0xffff);
    payload.set(r, 2);
    this.write(FrameKind.CLOSE, payload);
    lingerThenDestroy(this.channel, this.lingerMs);
    this.finish(code, reason);
  }
}
