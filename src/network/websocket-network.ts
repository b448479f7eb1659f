import { Agent as HttpAgent, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { isIP } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { errorText } from "../base/errors.js";
import type { Connection } from "./connection.js";
import { type NetworkHost, type NetworkHostOptions, ToolDbNetworkAdapter } from "./network-adapter.js";
import { WsConnection } from "./ws-connection.js";

export const DEFAULT_HEARTBEAT_MS = 10_000;

const NO_KEEPALIVE_HTTP = new HttpAgent({ keepAlive: false });
const NO_KEEPALIVE_HTTPS = new HttpsAgent({ keepAlive: false });

function isSpecificIp(host: string): boolean {
  return isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::";
}

/**
 * WebSocket transport on `ws` (Node). Servers accept links; every node can
 * dial with `connectTo(host, port)`.
 */
export class WebSocketNetwork extends ToolDbNetworkAdapter {
  private wss: WebSocketServer | undefined;
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
    if (this.wsOptions.httpServer) {
      this.wss = new WebSocketServer({ server: this.wsOptions.httpServer, maxPayload });
      const addr = this.wsOptions.httpServer.address();
      this.boundPort = typeof addr === "object" && addr ? addr.port : this.wsOptions.port;
    } else {
      const wss = new WebSocketServer({ host: this.wsOptions.host, port: this.wsOptions.port, maxPayload });
      this.wss = wss;
      await new Promise<void>((resolve, reject) => {
        wss.once("listening", resolve);
        wss.once("error", reject);
      });
      const addr = wss.address();
      this.boundPort = typeof addr === "object" && addr ? addr.port : this.wsOptions.port;
    }
    this.wss.on("error", (err) => this.log("server error: %s", errorText(err)));
    this.wss.on("connection", (socket: WebSocket, req: IncomingMessage) => {
      const connection = new WsConnection(
        socket,
        { outgoing: false, remoteHost: req.socket.remoteAddress, remotePort: req.socket.remotePort, transport: "websocket" },
        this.heartbeat,
      );
      this.attach(connection);
    });
    this.log("listening on %s:%d", this.wsOptions.host, this.boundPort);
  }

  protected dial(host: string, port: number): Connection {
    const scheme = this.wsOptions.ssl ? "wss" : "ws";
    const h = host.includes(":") ? `[${host}]` : host;
    const socket = new WebSocket(`${scheme}://${h}:${port}`, {
      maxPayload: this.options.maxMessageBytes,
      handshakeTimeout: this.options.handshakeTimeout,
      // Node's global agent keeps sockets alive: a peer that answers HTTP instead of upgrading would keep one open.
      agent: this.wsOptions.ssl ? NO_KEEPALIVE_HTTPS : NO_KEEPALIVE_HTTP,
      // A server bound to one address dials from it too, so peers see one identity per host.
      ...(this.wsOptions.server && isSpecificIp(this.wsOptions.host) ? { localAddress: this.wsOptions.host } : {}),
    });
    return new WsConnection(socket, { outgoing: true, remoteHost: host, remotePort: port, transport: "websocket" }, this.heartbeat);
  }

  protected async _close(): Promise<void> {
    const wss = this.wss;
    this.wss = undefined;
    if (!wss) return;
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}
