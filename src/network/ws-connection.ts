import type WebSocket from "ws";
import type { Clock } from "../base/clock.js";
import { ErrorCode } from "../base/errors.js";
import { CloseCode, Connection, type ConnectionInfo } from "./connection.js";
import { type Heartbeat, type HeartbeatSweep, sweepFor } from "./heartbeat-sweep.js";
import { CHUNK_OVERHEAD_BYTES, type InboundBudget, type InboundHolder } from "./inbound-budget.js";
import { type Corkable, corkForTurn, uncorkNow } from "./turn-cork.js";

const MAX_QUEUED_BEFORE_OPEN = 16;
/** Bytes a turn may hold back on a corked socket: past this, writing them at once costs no more system calls than waiting. */
const CORK_MAX_BYTES = 64 * 1024;
/** The socket's own connection, for the listeners all sockets share. */
const CONNECTION = Symbol("WsConnection");
type Tagged = WebSocket & { [CONNECTION]?: WsConnection };

/** The TCP (or TLS) socket under a WebSocket: corked for a turn, and its bytes read counted (cleartext on TLS). */
export interface WsStream extends Corkable {
  readonly bytesRead: number;
  on(event: "data", listener: () => void): unknown;
}
type TaggedStream = WsStream & { [CONNECTION]?: WsConnection };

export interface WsConnectionOptions {
  clock?: Clock;
  /** The socket under an accepted WebSocket; a dialed one's is taken from its upgrade response. */
  stream?: WsStream;
  /** The transport's bound on bytes held for unfinished messages over all its links (`maxReceiveBuffered`). */
  inbound?: InboundBudget;
}

/** WebSocket close codes we may send: 1000 or 4000-4999; reasons at most 123 bytes. */
function safeCode(code: number): number {
  return code === 1000 || (code >= 4000 && code <= 4999) ? code : 1000;
}

function safeReason(reason: string): string {
  let r = reason;
  while (new TextEncoder().encode(r).length > 123) r = r.slice(0, -1);
  return r;
}

/**
 * A `ws` socket as a Connection, with a heartbeat: pinged at each visit of
 * the transport's HeartbeatSweep (or of its own one, given an interval); no
 * pong before the next visit means the link is dead. Idle links are what a
 * server holds by the thousand, so a link has no timer of its own.
 *
 * `ws` keeps the fragments of a message until its last one (up to
 * `maxPayload`), and a peer that answers pings may never send it: the bytes
 * read from the socket since the last complete message, less the control
 * frames among them, are what the link reports to the transport's
 * InboundBudget, as stream links report their unfinished frames, with
 * CHUNK_OVERHEAD_BYTES for each read among them (ws keeps each read as a
 * Buffer of its own: a message sent a byte a segment held some 400 bytes
 * of memory a byte, uncounted). It may
 * miss the first bytes of an unfinished message read in one chunk with the
 * end of the message before it (or with the upgrade request): at most one
 * read (64 KiB) a link.
 */
export class WsConnection extends Connection implements Heartbeat, InboundHolder {
  private readonly heartbeat: HeartbeatSweep;
  private alive = true;
  /** The first error the socket reported (e.g. "connect ECONNREFUSED 127.0.0.1:9600"): the close reason when the close has none. */
  private socketError: string | undefined;
  /** Frames written before the socket opened (only the handshake ping, in practice). */
  private queued: string[] | undefined;
  /** The TCP socket under the WebSocket, corked for a turn while frames are written (turn-cork.ts). */
  private stream: WsStream | undefined;
  private readonly inbound: InboundBudget | undefined;
  /** The socket's `bytesRead` when the last message completed, plus the control frames read since. */
  private readMark = 0;
  /** Bytes of an unfinished message last reported to `inbound`. */
  private held = 0;
  /** Reads since the last complete message that held part of an unfinished one. */
  private reads = 0;

  constructor(
    private readonly socket: WebSocket,
    info: ConnectionInfo,
    heartbeat: HeartbeatSweep | number,
    options: WsConnectionOptions = {},
  ) {
    super(info);
    this.stream = options.stream;
    this.inbound = options.inbound;
    if (!this.stream) socket.once("upgrade", (response: { socket: WsStream }) => (this.stream = response.socket));
    this.heartbeat = sweepFor(heartbeat, options.clock);
    (socket as Tagged)[CONNECTION] = this;
    socket.on("message", WsConnection.onMessage);
    socket.on("pong", WsConnection.onPong);
    if (this.inbound) socket.on("ping", WsConnection.onPing);
    socket.on("close", WsConnection.onClose);
    socket.on("error", WsConnection.onError);
    // Until it opens, a dialed socket is bounded by ws's handshakeTimeout; the heartbeat starts with the link.
    if (socket.readyState === socket.OPEN) this.open();
    else {
      socket.once("open", () => {
        for (const frame of this.queued?.splice(0) ?? []) socket.send(frame);
        this.queued = undefined;
        if (!this.closed) this.open();
      });
    }
  }

  private open(): void {
    this.heartbeat.add(this);
    // Once ws reads the socket (its 'data' listener comes first, so a message a chunk completes has reset the mark when ours runs).
    // A dialed socket made open elsewhere (tests) has no stream here, and is not counted.
    const stream = this.stream as TaggedStream | undefined;
    if (!this.inbound || !stream) return;
    stream[CONNECTION] = this;
    this.readMark = stream.bytesRead;
    stream.on("data", WsConnection.onStreamData);
  }

  /**
   * After ws parsed a chunk: what it read since the last complete message is held (one subtraction a chunk), and
   * each read that carried part of it, which ws keeps as a Buffer of its own until the message completes.
   */
  private static onStreamData(this: TaggedStream): void {
    const connection = this[CONNECTION]!;
    const bytes = this.bytesRead - connection.readMark;
    const held = bytes > 0 ? bytes + ++connection.reads * CHUNK_OVERHEAD_BYTES : 0;
    if (held !== connection.held && !connection.closed) {
      connection.held = held;
      connection.inbound!.update(connection, held);
    }
  }

  /** A message completed: nothing of it is held any more. */
  private messageRead(): void {
    if (!this.inbound || !this.stream) return;
    this.readMark = this.stream.bytesRead;
    this.reads = 0;
    if (this.held !== 0) {
      this.held = 0;
      this.inbound.update(this, 0);
    }
  }

  /**
   * A ping or pong was read: its bytes are not part of a message. A control
   * frame has a 2-byte header (its payload is at most 125 bytes) and, from a
   * client, a 4-byte mask key (RFC 6455, 5.2). Never past what was read: a
   * message completed in the same chunk moved the mark there already.
   */
  private controlFrameRead(payload: number): void {
    if (!this.stream) return;
    this.readMark = Math.min(this.readMark + 2 + payload + (this.info.outgoing ? 0 : 4), this.stream.bytesRead);
  }

  /** This link holds the most of an unfinished message while the transport's links together hold too much. */
  overBudget(): void {
    if (this.closed) return;
    this.emit("refused", ErrorCode.MEMORY_LIMIT, `unfinished message of ${this.held} bytes held while the links' unfinished frames are over the budget`);
    this.close(CloseCode.OVERLOADED, "unfinished frames over the budget");
  }

  // The socket's listeners are shared by every link (ws calls them on the socket, which points back here): no closures per link.
  private static onMessage(this: Tagged, data: WebSocket.RawData, isBinary: boolean): void {
    const connection = this[CONNECTION]!;
    connection.alive = true;
    connection.heard(connection.heartbeat);
    if (connection.inbound) connection.messageRead();
    connection.emit("message", isBinary ? "\u0000binary" : rawToString(data));
  }

  private static onPong(this: Tagged, data: Buffer): void {
    const connection = this[CONNECTION]!;
    connection.alive = true;
    connection.heard(connection.heartbeat);
    if (connection.inbound) connection.controlFrameRead(data.length);
  }

  /** ws answers pings itself; only their bytes are noted here. */
  private static onPing(this: Tagged, data: Buffer): void {
    this[CONNECTION]!.controlFrameRead(data.length);
  }

  private static onClose(this: Tagged, code: number, reason: Buffer): void {
    // A link that failed before or without a close frame (1006) says why through its socket's error.
    const connection = this[CONNECTION]!;
    connection.finish(code, reason.toString() || connection.socketError || "");
  }

  private static onError(this: Tagged, err: Error & { code?: string }): void {
    // 'close' always follows 'error' in ws. ws refuses bad frames itself
    // (1009 over maxPayload, 1007 invalid UTF-8, 1002 protocol errors), so
    // the adapter never sees them: report each as a refusal.
    const code = err.code ?? "";
    this[CONNECTION]!.socketError ??= err.message.slice(0, 200);
    if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") this[CONNECTION]!.emit("refused", ErrorCode.FRAME_TOO_LARGE, "frame too large");
    else if (code === "WS_ERR_INVALID_UTF8") this[CONNECTION]!.emit("refused", ErrorCode.BAD_MESSAGE, "invalid UTF-8 in a text frame (close 1007)");
    else if (code.startsWith("WS_ERR_")) this[CONNECTION]!.emit("refused", ErrorCode.BAD_MESSAGE, `${err.message} (${code})`);
  }

  /** Called by the sweep. */
  beat(): void {
    // While we do not read (backpressure), the peer's pongs wait unread: not a dead link.
    if (!this.alive && !this.paused) {
      this.socket.terminate();
      this.finish(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout");
      return;
    }
    this.alive = false;
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping();
  }

  private finish(code: number, reason: string): void {
    this.heartbeat.delete(this);
    if (this.held !== 0) {
      this.held = 0;
      this.inbound!.update(this, 0);
    }
    this.markClosed(code, reason);
  }

  private paused = false;

  override pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  override get sendBacklog(): number {
    return this.socket.bufferedAmount;
  }

  override resume(): void {
    this.paused = false;
    this.alive = true;
    this.heard(this.heartbeat, false);
    this.socket.resume();
  }

  /** A fragmented text message: each part is written as it is (receivers reassemble the message). */
  protected override _sendParts(parts: readonly string[]): void {
    const state = this.socket.readyState;
    // Closing or closed, `_send` drops the frame anyway: no megabyte string joined for nothing.
    if (state !== this.socket.OPEN) return state === this.socket.CONNECTING ? this._send(parts.join("")) : undefined;
    const last = parts.length - 1;
    this.corkForTurn();
    parts.forEach((part, i) => this.socket.send(part, { binary: false, fin: i === last }));
    this.corkedEnough();
  }

  /**
   * Only a link with nothing queued is corked, and only for small frames (up
   * to CORK_MAX_BYTES a turn): large replies go out as they are written, so
   * the send budget sees a link's queue as the kernel leaves it (a peer that
   * does not read is seen to stall, and the server's total is not inflated
   * by bytes the kernel would have taken).
   */
  private corkForTurn(): void {
    if (this.stream && this.socket.bufferedAmount === 0) corkForTurn(this.stream);
  }

  private corkedEnough(): void {
    if (this.stream && this.socket.bufferedAmount >= CORK_MAX_BYTES) uncorkNow(this.stream);
  }

  protected _send(frame: string): void {
    const state = this.socket.readyState;
    if (state === this.socket.OPEN) {
      this.corkForTurn();
      this.socket.send(frame);
      this.corkedEnough();
    } else if (state === this.socket.CONNECTING && (this.queued?.length ?? 0) < MAX_QUEUED_BEFORE_OPEN) (this.queued ??= []).push(frame);
  }

  protected override _abort(code: number, reason: string): void {
    this.socket.terminate();
    this.finish(code, reason);
  }

  protected _close(code: number, reason: string): void {
    const state = this.socket.readyState;
    if (state === this.socket.CONNECTING) {
      this.socket.terminate();
      this.finish(code, reason);
      return;
    }
    if (state === this.socket.OPEN) this.socket.close(safeCode(code), safeReason(reason));
    // Report our own code and reason locally, and don't wait for the peer's close frame.
    const timer = setTimeout(() => this.socket.terminate(), 1000);
    timer.unref();
    this.socket.once("close", () => clearTimeout(timer));
    this.finish(code, reason);
  }
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
