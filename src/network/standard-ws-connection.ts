import { CloseCode, Connection, type ConnectionInfo } from "./connection.js";

/** The part of the WHATWG WebSocket interface we use (browsers, Deno, Node >= 22, `ws`). */
export interface StandardWebSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: any) => void): void;
}

export type StandardWebSocketConstructor = new (url: string) => StandardWebSocket;

const CONNECTING = 0;
const OPEN = 1;
const MAX_QUEUED_BEFORE_OPEN = 16;

/**
 * A standard (browser) WebSocket as a Connection. Browsers cannot send
 * WebSocket pings, so dead links are detected by the server's heartbeat and
 * by TCP; the server answers our frames, and a link the server dropped closes here.
 */
export class StandardWebSocketConnection extends Connection {
  private queued: string[] = [];

  constructor(
    private readonly socket: StandardWebSocket,
    info: ConnectionInfo,
  ) {
    super(info);
    socket.addEventListener("open", () => {
      for (const frame of this.queued.splice(0)) socket.send(frame);
    });
    socket.addEventListener("message", (event: { data: unknown }) => {
      // Text frames only: anything else is refused as malformed by the protocol.
      this.emit("message", typeof event.data === "string" ? event.data : "\u0000binary");
    });
    socket.addEventListener("close", (event: { code?: number; reason?: string }) => this.markClosed(event.code ?? CloseCode.GOING_AWAY, event.reason ?? ""));
    socket.addEventListener("error", () => {
      // A 'close' event always follows.
    });
  }

  protected _send(frame: string): void {
    if (this.socket.readyState === OPEN) this.socket.send(frame);
    else if (this.socket.readyState === CONNECTING && this.queued.length < MAX_QUEUED_BEFORE_OPEN) this.queued.push(frame);
  }

  protected _close(code: number, reason: string): void {
    const valid = code === 1000 || (code >= 3000 && code <= 4999);
    try {
      this.socket.close(valid ? code : 1000, reason.slice(0, 100));
    } catch {
      // Closing a socket that never opened can throw in some engines; we are done with it either way.
    }
    this.markClosed(code, reason);
  }
}
