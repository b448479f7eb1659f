import { Agent as HttpAgent, type IncomingMessage, type Server as HttpServer, STATUS_CODES, createServer } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Agent as HttpsAgent } from "node:https";
import { isIP } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import type { Connection } from "./connection.js";
import { type NetworkHost, type NetworkHostOptions, ToolDbNetworkAdapter } from "./network-adapter.js";
import { incomingSocketCapacity } from "./open-file-limit.js";
import { refuseUpgrade } from "./upgrade-refusal.js";
import { WsConnection } from "./ws-connection.js";

export const DEFAULT_HEARTBEAT_MS = 10_000;

const NO_KEEPALIVE_HTTP = new HttpAgent({ keepAlive: false });
const NO_KEEPALIVE_HTTPS = new HttpsAgent({ keepAlive: false });

function isSpecificIp(host: string): boolean {
  return isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::";
}

/** Reads of one message `ws` keeps at least (a 1 MiB message in reads of 64 bytes). */
const MIN_BUFFERED_READS = 16_384;
/** The average read an honest peer's message is allowed at least: a slow uplink reads 536 to 1,448 bytes at a time. */
const MIN_AVERAGE_READ = 512;

/**
 * The pieces `ws` keeps of one unfinished message, each a Buffer of its own
 * (100 to 450 bytes of memory beside its bytes): fragments (ToolDb peers send
 * a message in at most 3, browsers in 1; ws's default, 16,384 one-byte
 * fragments, held some 2.5 MB a link for 115 KB sent) and reads of the
 * socket: at least 16,384, and enough for a message of `maxMessageBytes` in
 * reads of 512 bytes (a fixed 16,384 closed an honest 16 MiB message read
 * 536 to 1,448 bytes at a time); ws's default is 262,144. The inbound budget
 * is charged for the reads too (ws-connection.ts), which bounds what many
 * of them hold.
 */
export function receivePieces(maxMessageBytes: number): { maxFragments: number; maxBufferedChunks: number } {
  return { maxFragments: 256, maxBufferedChunks: Math.max(MIN_BUFFERED_READS, Math.ceil(maxMessageBytes / MIN_AVERAGE_READ)) };
}

/**
 * WebSocket transport on `ws` (Node). Servers accept links; every node can
 * dial with `connectTo(host, port)`.
 */
export class WebSocketNetwork extends ToolDbNetworkAdapter {
  private wss: WebSocketServer | undefined;
  /** The HTTP server this transport made for itself (not one passed as `httpServer`). */
  private ownServer: HttpServer | undefined;
  /** Removes the socket-budget listener from the HTTP server (one passed in outlives this transport). */
  private stopBudgeting: (() => void) | undefined;
  private boundPort: number | undefined;

  constructor(host: NetworkHost) {
    super(host, "network:ws");
  }

  private get wsOptions(): NetworkHostOptions {
    return this.host.options;
  }

  /** The port actually listened on (useful with port 0). */
  override get port(): number | undefined {
    return this.boundPort;
  }

  protected async listen(): Promise<void> {
    if (!this.wsOptions.server) return;
    const maxPayload = this.options.maxMessageBytes;
    const { maxFragments, maxBufferedChunks } = receivePieces(maxPayload);
    this.sessionOwner.guard.sockets.capacity = incomingSocketCapacity(this.sessionOwner.guard.limits.maxOpenSockets);
    if (this.wsOptions.httpServer) {
      this.wss = new WebSocketServer({ server: this.wsOptions.httpServer, maxPayload, maxFragments, maxBufferedChunks });
      this.budgetSockets(this.wsOptions.httpServer);
      const addr = this.wsOptions.httpServer.address();
      this.boundPort = typeof addr === "object" && addr ? addr.port : this.wsOptions.port;
    } else {
      // As ws's own server (426 to plain HTTP), made here so that raw sockets are counted from accept
      // and a request that never upgrades is dropped after the handshake timeout.
      const server = createServer({ headersTimeout: Math.max(1000, this.options.handshakeTimeout) }, (_req, res) => {
        const body = STATUS_CODES[426]!;
        res.writeHead(426, { "Content-Length": body.length, "Content-Type": "text/plain", "X-Content-Type-Options": "nosniff" });
        res.end(body);
      });
      this.ownServer = server;
      this.budgetSockets(server);
      this.wss = new WebSocketServer({ server, maxPayload, maxFragments, maxBufferedChunks });
      // ws re-emits its server's errors, a failed listen among them: heard before listening, or they would crash the process.
      this.wss.on("error", (err) => this.log("server error: %s", errorText(err)));
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(new ToolDbError(ErrorCode.NETWORK_FAILED, `cannot listen on ${this.wsOptions.host ?? "any address"}:${this.wsOptions.port}: ${errorText(err)}`, err)));
        server.listen(this.wsOptions.port, this.wsOptions.host, () => resolve());
      });
      const addr = server.address();
      this.boundPort = typeof addr === "object" && addr ? addr.port : this.wsOptions.port;
    }
    if (this.wss.listenerCount("error") === 0) this.wss.on("error", (err) => this.log("server error: %s", errorText(err)));
    this.wss.on("wsClientError", (err: Error, socket: Duplex, req: IncomingMessage) => {
      this.log("refused an upgrade from %s: %s", req.socket.remoteAddress, err.message);
      refuseUpgrade(socket, req, err.message);
    });
    this.wss.on("connection", (socket: WebSocket, req: IncomingMessage) => {
      this.socketLinked(req.socket);
      const connection = new WsConnection(
        socket,
        { outgoing: false, remoteHost: req.socket.remoteAddress, remotePort: req.socket.remotePort, transport: "websocket" },
        this.heartbeat,
        { stream: req.socket, inbound: this.inbound },
      );
      this.attach(connection);
    });
    this.log("listening on %s:%d", this.wsOptions.host, this.boundPort);
  }

  /** Every socket the HTTP server accepts counts against the socket budget (descriptors) from then on. */
  private budgetSockets(server: HttpServer): void {
    const onConnection = (socket: Socket) => {
      if (!this.acceptSocket(socket, socket.remoteAddress, socket.remotePort)) socket.destroy();
    };
    server.on("connection", onConnection);
    // A server passed in outlives this transport: its listener goes with the transport.
    this.stopBudgeting = () => server.off("connection", onConnection);
  }

  protected dial(host: string, port: number): Connection {
    const scheme = this.wsOptions.ssl ? "wss" : "ws";
    const h = host.includes(":") ? `[${host}]` : host;
    const socket = new WebSocket(`${scheme}://${h}:${port}`, {
      maxPayload: this.options.maxMessageBytes,
      ...receivePieces(this.options.maxMessageBytes),
      handshakeTimeout: this.options.handshakeTimeout,
      // No compression offered: a hostile server that accepted it could make a message larger than
      // the bytes read, which is what the inbound budget counts (our servers never enable it).
      perMessageDeflate: false,
      // Node's global agent keeps sockets alive: a peer that answers HTTP instead of upgrading would keep one open.
      agent: this.wsOptions.ssl ? NO_KEEPALIVE_HTTPS : NO_KEEPALIVE_HTTP,
      // A server bound to one address dials from it too, so peers see one identity per host.
      ...(this.wsOptions.server && isSpecificIp(this.wsOptions.host) ? { localAddress: this.wsOptions.host } : {}),
    });
    return new WsConnection(socket, { outgoing: true, remoteHost: host, remotePort: port, transport: "websocket" }, this.heartbeat, { inbound: this.inbound });
  }

  protected async _close(): Promise<void> {
    this.stopBudgeting?.();
    this.stopBudgeting = undefined;
    const wss = this.wss;
    const server = this.ownServer;
    this.wss = undefined;
    this.ownServer = undefined;
    if (!wss) return;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
