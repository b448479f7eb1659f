/**
 * Test-only adapters that let the npm `tool-db` 2.6.6 package (CommonJS, no
 * transport of its own: `@tool-db/websocket-network` was never published)
 * talk over WebSockets, so interop tests can run real 2.6.6 nodes against
 * tooldb-dht on loopback.
 *
 * - `ToolDbWsAdapter`: a ToolDbNetworkAdapter on `ws`. Server mode listens on
 *   options.host/port at once, like 2.6.6's own transport did (port 0 = any
 *   free port; the bound port is written back into options.port before the
 *   node signs its own peer record). `ListenWhenListedWsAdapter` instead waits
 *   until the server lists itself in `serverPeers` (fixed ports). Every mode
 *   dials options.peers once the node emitted "init", and `connectTo(host,
 *   port)` dials more. A dialer sends tool-db's ping as soon as the socket
 *   opens, as a 2.6.6 client does. `close()` (tool-db has none for the
 *   network) terminates every socket, retry timer and the listening server.
 * - `MemoryToolDbStore`: an in-memory ToolDbStorageAdapter whose `get`
 *   rejects for a missing key, which tool-db relies on.
 *
 * Not part of the library; no reconnect of established links (2.6.6's own
 * adapter did not do it either).
 */
import { EventEmitter } from "node:events";
import t from "tool-db";
import type { Peer, ToolDb as LegacyToolDbType } from "tool-db";
import { WebSocket, WebSocketServer } from "ws";

const { ToolDbNetworkAdapter, ToolDbStorageAdapter } = t;

export type LegacyToolDb = LegacyToolDbType;

export interface AdapterEvents {
  /** A socket got its tool-db client id (first ping or pong processed); sends to it work from now on. */
  session: [clientId: string, outgoing: boolean];
  /** A registered socket closed. */
  "session-close": [clientId: string];
  /** A dial attempt failed before opening. */
  "dial-failed": [host: string, port: number, error: Error];
}

/** WebSocket transport for tool-db 2.6.6 (test only). */
export class ToolDbWsAdapter extends ToolDbNetworkAdapter {
  readonly events = new EventEmitter<AdapterEvents>();
  private wss: WebSocketServer | undefined;
  private boundPort: number | undefined;
  private readonly sockets = new Set<WebSocket>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly listening: Promise<void>;
  /** What signing our own peer record waits for: the bound port (normal mode). */
  private readonly portKnown: Promise<void>;
  private firstMeAsPeer: Promise<Peer> | undefined;
  private readonly readyPromise: Promise<void>;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private openGate: () => void = () => undefined;

  /**
   * @param listenWhenListed Server mode only, with a fixed port: accept
   *   connections only once the server lists itself in `serverPeers`. A 2.6.6
   *   transport listens at once, so a client that connects during start-up
   *   gets a pong without the server's own record; this mode removes that
   *   window (see `ListenWhenListedWsAdapter`).
   */
  constructor(db: LegacyToolDb, listenWhenListed = false) {
    super(db);
    const options = db.options;
    const deferred = listenWhenListed && options.server;
    if (deferred && !options.port) throw new Error("listenWhenListed needs a fixed port");
    const gate = deferred ? new Promise<void>((resolve) => (this.openGate = resolve)) : Promise.resolve();
    this.listening = options.server ? gate.then(() => this.listen(options.host, options.port)) : Promise.resolve();
    // Swallow here; `ready` reports it.
    this.listening.catch(() => undefined);
    this.portKnown = deferred ? Promise.resolve() : this.listening;
    this.readyPromise = new Promise<void>((resolve, reject) => {
      // Registered after the base class's own "init" listener, so it runs
      // after the base called getMeAsPeer() (server mode) and chained its
      // serverPeers.push onto that promise.
      db.once("init", () => {
        if (this.closed) return resolve();
        for (const peer of options.peers ?? []) this.connectTo(peer.host, peer.port);
        if (!options.server) return resolve();
        // Runs after the base's `.then(push)`: the server lists itself in its pongs from now on.
        (this.firstMeAsPeer ?? this.getMeAsPeer())
          .then(() => {
            this.openGate();
            return this.listening;
          })
          .then(() => resolve(), reject);
      });
    });
    this.readyPromise.catch(() => undefined);
  }

  /**
   * Resolves once the node's keys exist, the server listens, and (server
   * mode) the server's own peer record is in `serverPeers`, i.e. a client
   * handshake now gets a pong that identifies this server. Await it after
   * `db.ready`.
   */
  get ready(): Promise<void> {
    return this.readyPromise;
  }

  /** The listening port (server mode). */
  get port(): number | undefined {
    return this.boundPort;
  }

  /** Client ids with a registered, open socket. */
  get connectedClientIds(): string[] {
    return Object.keys(this.clientToSend).filter((id) => this.isConnected(id));
  }

  /** Signs the peer record only once the bound port is known (port 0). */
  override getMeAsPeer(): Promise<Peer> {
    const p = this.portKnown.then(() => super.getMeAsPeer());
    this.firstMeAsPeer ??= p;
    return p;
  }

  private async listen(host: string, port: number): Promise<void> {
    if (this.closed) return;
    const options = this.tooldb.options;
    const wss = options.httpServer ? new WebSocketServer({ server: options.httpServer }) : new WebSocketServer({ host, port });
    this.wss = wss;
    if (!options.httpServer) {
      await new Promise<void>((resolve, reject) => {
        wss.once("listening", resolve);
        wss.once("error", reject);
      });
    }
    const addr = options.httpServer ? options.httpServer.address() : wss.address();
    this.boundPort = typeof addr === "object" && addr ? addr.port : port;
    // Peer records sign host:port; make them carry the real port.
    options.port = this.boundPort;
    wss.on("error", (err) => this.tooldb.logger("ws server error", err));
    wss.on("connection", (socket: WebSocket) => {
      if (this.closed) {
        socket.terminate();
        return;
      }
      this.attach(socket, false);
    });
  }

  /** Dials ws://host:port; failed dials are retried options.maxRetries times, options.wait ms apart. */
  connectTo(host: string, port: number, attempt = 0): void {
    if (this.closed) return;
    const h = host.includes(":") ? `[${host}]` : host;
    const scheme = this.tooldb.options.ssl ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${h}:${port}`);
    let opened = false;
    socket.on("open", () => {
      opened = true;
    });
    socket.on("error", (err: Error) => {
      if (opened || this.closed) return;
      this.events.emit("dial-failed", host, port, err);
      const max = this.tooldb.options.maxRetries;
      if (attempt + 1 < max) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.connectTo(host, port, attempt + 1);
        }, this.tooldb.options.wait);
        this.timers.add(timer);
      }
    });
    this.attach(socket, true);
  }

  private attach(socket: WebSocket, outgoing: boolean): void {
    this.sockets.add(socket);
    let clientId: string | null = null;
    const setClientId = (id: string): void => {
      const first = clientId === null;
      clientId = id;
      this.clientToSend[id] = (message: string) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(message);
      };
      this.isClientConnected[id] = () => socket.readyState === WebSocket.OPEN;
      if (first) queueMicrotask(() => this.events.emit("session", id, outgoing));
    };
    if (outgoing) {
      socket.on("open", () => {
        this.craftPingMessage().then(
          (ping) => {
            if (socket.readyState === WebSocket.OPEN) socket.send(ping);
          },
          (err) => this.tooldb.logger("cannot craft ping", err),
        );
      });
    }
    socket.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (this.closed || isBinary) return;
      this.onClientMessage(rawToString(data), clientId, setClientId);
    });
    socket.on("error", () => {
      // 'close' follows; dial failures are handled by connectTo.
    });
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (clientId === null) return;
      const id = clientId;
      // Only forget the id if no newer socket took it over.
      if (!this.isClientConnected[id] || !this.isClientConnected[id]!()) {
        this.onClientDisconnect(id);
        delete this.isClientConnected[id];
      }
      if (!this.closed) this.events.emit("session-close", id);
    });
  }

  /** Idempotent: stops retries, terminates every socket and the server; resolves when all are closed. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.openGate();
    await this.listening.catch(() => undefined);
    const closing = [...this.sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve();
          socket.once("close", () => resolve());
          socket.terminate();
        }),
    );
    await Promise.all(closing);
    for (const id of Object.keys(this.clientToSend)) this.onClientDisconnect(id);
    for (const id of Object.keys(this.isClientConnected)) delete this.isClientConnected[id];
    const wss = this.wss;
    this.wss = undefined;
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
    this.events.removeAllListeners();
  }
}

/** A 2.6.6 server transport that accepts connections only once its own peer record is listed (fixed port only). */
export class ListenWhenListedWsAdapter extends ToolDbWsAdapter {
  constructor(db: LegacyToolDb) {
    super(db, true);
  }
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}

export interface StoreEvents {
  put: [key: string, data: string];
}

/** In-memory storage for tool-db 2.6.6: `get` rejects when the key is missing, as tool-db expects. */
export class MemoryToolDbStore extends ToolDbStorageAdapter {
  readonly events = new EventEmitter<StoreEvents>();
  private readonly data = new Map<string, string>();

  override put(key: string, data: string): Promise<unknown> {
    this.data.set(key, data);
    this.events.emit("put", key, data);
    return Promise.resolve();
  }

  override get(key: string): Promise<string> {
    const value = this.data.get(key);
    return value === undefined ? Promise.reject(new Error(`key not found: ${key}`)) : Promise.resolve(value);
  }

  override query(key: string): Promise<string[]> {
    return Promise.resolve([...this.data.keys()].filter((k) => k.startsWith(key)));
  }

  /** Synchronous peek for tests. */
  peek(key: string): string | undefined {
    return this.data.get(key);
  }
}
