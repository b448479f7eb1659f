import { ErrorCode, ToolDbError } from "../base/errors.js";
import { checkPublicUrl, urlEndpoint } from "../limits/peer-url.js";
import type { Connection } from "./connection.js";
import { dialKey } from "./dial-target.js";
import { type ConnectOptions, type NetworkHost, ToolDbNetworkAdapter } from "./network-adapter.js";
import { StandardWebSocketConnection, type StandardWebSocketConstructor } from "./standard-ws-connection.js";

/**
 * WebSocket transport for browsers: dials servers with the platform's
 * native WebSocket and never listens (browsers cannot accept links). It
 * speaks exactly what WebSocketNetwork speaks, so a browser client links to
 * any tooldb-dht or tool-db server.
 */
export class BrowserWebSocketNetwork extends ToolDbNetworkAdapter {
  /** Dial targets known by URL (a wss:// name, a path behind a proxy), by host:port. */
  private readonly urls = new Map<string, string>();

  /** The WebSocket class to dial with; `globalThis.WebSocket` unless replaced by `using()`. */
  protected get WebSocketClass(): StandardWebSocketConstructor {
    const native = (globalThis as { WebSocket?: StandardWebSocketConstructor }).WebSocket;
    if (!native) throw new ToolDbError(ErrorCode.NETWORK_FAILED, "no WebSocket in this environment");
    return native;
  }

  /** A variant that dials with another WebSocket class (a polyfill, or `ws` in tests). */
  static using(impl: StandardWebSocketConstructor): new (host: NetworkHost) => BrowserWebSocketNetwork {
    return class extends BrowserWebSocketNetwork {
      protected override get WebSocketClass(): StandardWebSocketConstructor {
        return impl;
      }
    };
  }

  constructor(host: NetworkHost) {
    super(host, "network:browser-ws");
  }

  /**
   * Keeps a link to the server at a ws:// or wss:// URL (as signed in its
   * peer record), e.g. wss://db.example.com/tooldb behind a TLS proxy.
   */
  connectToUrl(url: string, opts: ConnectOptions = {}): void {
    const { host, port } = urlEndpoint(checkPublicUrl(url));
    this.urls.set(dialKey(host, port), url);
    this.connectTo(host, port, opts);
  }

  protected async listen(): Promise<void> {
    if (this.host.isServer) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "a browser node cannot be a server: use WebSocketNetwork in Node");
  }

  protected dial(host: string, port: number): Connection {
    const scheme = this.host.options.ssl ? "wss" : "ws";
    const h = host.includes(":") ? `[${host}]` : host;
    const socket = new this.WebSocketClass(this.urls.get(dialKey(host, port)) ?? `${scheme}://${h}:${port}`);
    return new StandardWebSocketConnection(socket, { outgoing: true, remoteHost: host, remotePort: port });
  }

  protected async _close(): Promise<void> {
    // Links are closed by the base class; nothing listens.
  }
}
