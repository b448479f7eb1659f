import type { ErrorCode } from "../base/errors.js";
import { TypedEmitter } from "../base/typed-emitter.js";
import { utf8Length } from "../limits/frame-fit.js";
import type { HeartbeatSweep } from "./heartbeat-sweep.js";

/**
 * One transport-level link carrying ToolDb text frames. Transports
 * (WebSocket now, Hyperswarm streams later) subclass this; the network
 * adapter base class runs the ToolDb handshake and routing on top.
 */
export type ConnectionEvents = {
  message: [frame: string];
  close: [code: number, reason: string];
  /** The transport itself refused input (e.g. a frame over the size limit); 'close' follows. */
  refused: [code: ErrorCode, reason: string];
  /** The peer was heard again after a silence (ms) of a cut path (HeartbeatSweep.cutBetween), without the link closing. */
  revived: [silentMs: number];
};

export interface ConnectionInfo {
  /** True when this node dialed. */
  outgoing: boolean;
  /** Remote transport address, when known (for logs and dial bookkeeping). */
  remoteHost?: string;
  remotePort?: number;
  /** The carrier ("websocket", "tcp", "hyperswarm", "stream"), for logs and duplicate-link reasons. */
  transport?: string;
}

/**
 * One receiver of all of a link's events, called before any listener: the
 * network adapter's link is one, so the thousands of links of a server
 * carry no listener closures.
 */
export interface ConnectionHandler {
  onMessage(frame: string): void;
  onRefused(code: ErrorCode, reason: string): void;
  onClose(code: number, reason: string): void;
  onRevived?(silentMs: number): void;
  /** A frame was written to the transport (the server's send budget reads the queue again). */
  onSent?(): void;
  /** A frame of `bytes` is about to be written: false when the link may not queue it (it is dropped instead). */
  mayQueue?(bytes: number): boolean;
}

export abstract class Connection extends TypedEmitter<ConnectionEvents> {
  private closedFlag = false;
  private handler: ConnectionHandler | undefined = undefined;
  /** When the peer last showed a sign of life, on the heartbeat's clock. */
  private heardAt: number | undefined = undefined;

  constructor(readonly info: ConnectionInfo) {
    super();
  }

  /** Sets the link's handler (once; the network adapter's). Listeners still hear every event after it. */
  handleWith(handler: ConnectionHandler): void {
    this.handler = handler;
  }

  override emit<K extends keyof ConnectionEvents & string>(event: K, ...args: ConnectionEvents[K]): boolean {
    const handler = this.handler;
    // As the emitter: nothing after the close, and a throwing handler does not break the transport.
    if (handler && (event === "close" || !this.closedFlag)) {
      try {
        if (event === "message") handler.onMessage(args[0] as string);
        else if (event === "refused") handler.onRefused(args[0] as ErrorCode, args[1] as string);
        else if (event === "close") handler.onClose(args[0] as number, args[1] as string);
        else if (event === "revived") handler.onRevived?.(args[0] as number);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    return super.emit(event, ...args) || handler !== undefined;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Sends one frame; silently dropped once closed, or when the server's send budget refuses it (the link is dropped then). */
  send(frame: string): void {
    if (this.closedFlag) return;
    // In UTF-8 bytes, as the budget counts queues: a frame of multi-byte text is up to 3 × its length.
    if (this.handler?.mayQueue && !this.handler.mayQueue(utf8Length(frame))) return;
    this._send(frame);
    this.handler?.onSent?.();
  }

  /**
   * Sends one frame given as the parts of its text, e.g. a stored record
   * spliced into a reply's envelope. Joining them would allocate a fresh
   * megabyte string per reply for a large record (page faults, ~3.6 ms);
   * transports that can write the parts one after the other do so.
   */
  sendParts(parts: readonly string[]): void {
    if (this.closedFlag) return;
    if (this.handler?.mayQueue) {
      let bytes = 0;
      for (const part of parts) bytes += utf8Length(part);
      if (!this.handler.mayQueue(bytes)) return;
    }
    this._sendParts(parts);
    this.handler?.onSent?.();
  }

  /** By default the parts are joined and sent as one frame. */
  protected _sendParts(parts: readonly string[]): void {
    this._send(parts.join(""));
  }

  /** Closes with an application code (4000-4999) and a human-readable reason. Idempotent. */
  close(code = 1000, reason = ""): void {
    if (this.closedFlag) return;
    this._close(code, reason);
  }

  /**
   * Closes at once, dropping what is queued to go out (the peer did not read
   * it): the memory is freed now, not after a close handshake. Idempotent.
   */
  abort(code: number, reason: string): void {
    if (this.closedFlag) return;
    this._abort(code, reason);
  }

  /** Transports that queue outgoing data override it to drop the queue; by default a normal close. */
  protected _abort(code: number, reason: string): void {
    this._close(code, reason);
  }

  /** Transports call this exactly when the link is gone; emits 'close' once. */
  protected markClosed(code: number, reason: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.emit("close", code, reason);
    this.handler = undefined;
    this.silence();
  }

  /**
   * Transports call this on every sign of life of the peer (a frame, a pong;
   * `revive` false when we resume reading after our own backpressure pause,
   * which cut nothing). One that ends a silence of a cut path (the
   * heartbeat's `cutBetween`) emits 'revived'.
   */
  protected heard(heartbeat: HeartbeatSweep, revive = true): void {
    if (!heartbeat.enabled) return;
    const now = heartbeat.now();
    const since = this.heardAt;
    this.heardAt = now;
    if (revive && since !== undefined && heartbeat.cutBetween(since, now)) this.emit("revived", now - since);
  }

  /** Stop reading from the peer (backpressure); transports that cannot, ignore it. */
  pause(): void {}

  resume(): void {}

  /** Bytes sent but not yet taken by the peer (queued in this process); 0 when the transport cannot tell. */
  get sendBacklog(): number {
    return 0;
  }

  protected abstract _send(frame: string): void;
  protected abstract _close(code: number, reason: string): void;
}

/** Close codes with a meaning in the ToolDb handshake (sent as WebSocket close codes). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_LARGE: 1009,
  BAD_MESSAGE: 4000,
  TOPIC_MISMATCH: 4001,
  BAD_PEER: 4002,
  DUPLICATE: 4003,
  SELF: 4004,
  HANDSHAKE_TIMEOUT: 4005,
  TOO_MANY_STRIKES: 4006,
  HEARTBEAT_TIMEOUT: 4007,
  /** The pong carried no identity yet (a tool-db 2.6.6 server still starting). */
  NO_IDENTITY: 4008,
  /** A connection limit refused the link (try later or elsewhere). */
  OVERLOADED: 4009,
  /** The peer's identity or IP is banned for a while. */
  BANNED: 4010,
  /** A server closed a server link: it has the most server links it keeps (try the servers it listed). */
  MESH_FULL: 4011,
  /** A client dropped a server that left its acknowledged puts or its queries unanswered too long (src/node/server-watch.ts). */
  UNRESPONSIVE: 4012,
} as const;

/** Refusals after which dialing the same address again is pointless. */
export function isPermanentRefusal(code: number): boolean {
  return code === CloseCode.TOPIC_MISMATCH || code === CloseCode.BAD_PEER || code === CloseCode.SELF;
}

/** What a carrier tears down: a stream or a data channel. */
interface Destroyable {
  readonly destroyed?: boolean;
  destroy(): void;
  on(event: "close", listener: () => void): unknown;
}

/** Gives the peer time to read a close frame and end its side, then destroys `target` (unless it closed first). */
export function lingerThenDestroy(target: Destroyable, lingerMs: number): void {
  if (target.destroyed) return;
  const timer = setTimeout(() => target.destroy(), lingerMs);
  (timer as { unref?: () => void }).unref?.();
  target.on("close", () => clearTimeout(timer));
}
