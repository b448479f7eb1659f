import net from "node:net";
import { errorText } from "../base/errors.js";
import type { Connection } from "./connection.js";
import { ToolDbNetworkAdapter } from "./network-adapter.js";
import { incomingSocketCapacity } from "./open-file-limit.js";
import type { NetworkHost } from "./network-host.js";
import { StreamConnection } from "./stream-connection.js";

/**
 * Plain TCP transport: the stream bridge over `net` sockets. Servers listen
 * on host:port; every node dials host:port. Mostly the proof that the stream
 * carrier passes the same compliance suite as WebSocket, and a carrier for
 * private networks where WebSocket's HTTP upgrade buys nothing.
 */
export class TcpNetwork extends ToolDbNetworkAdapter {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private boundPort: number | undefined;

  constructor(host: NetworkHost) {
    super(host, "network:tcp");
  }

  /** The port actually listened on (useful with port 0). */
  override get port(): number | undefined {
    return this.boundPort;
  }

  protected async listen(): Promise<void> {
    const { server: serving, host, port } = this.host.options;
    if (!serving) return;
    const guard = this.sessionOwner.guard;
    guard.sockets.capacity = incomingSocketCapacity(guard.limits.maxOpenSockets);
    const server = net.createServer((socket) => {
      if (!this.acceptSocket(socket, socket.remoteAddress, socket.remotePort)) return void socket.destroy();
      this.socketLinked(socket); // a TCP socket is a link from the start: the gate's handshake rules apply
      this.attach(this.wrap(socket, { outgoing: false, remoteHost: socket.remoteAddress, remotePort: socket.remotePort }));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    server.on("error", (err) => this.log("server error: %s", errorText(err)));
    const addr = server.address();
    this.boundPort = typeof addr === "object" && addr ? addr.port : port;
    this.log("listening on %s:%d", host, this.boundPort);
  }

  protected dial(host: string, port: number): Connection {
    return this.wrap(net.connect({ host, port }), { outgoing: true, remoteHost: host, remotePort: port });
  }

  private wrap(socket: net.Socket, info: { outgoing: boolean; remoteHost?: string; remotePort?: number }): StreamConnection {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => this.sockets.delete(socket));
    return new StreamConnection(socket, { ...info, transport: "tcp" }, this.carrierOptions());
  }

  protected async _close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
