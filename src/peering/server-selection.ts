import { TimerGroup, Wake } from "../base/clock.js";
import { errorText } from "../base/errors.js";
import { createLogger, type LogFn } from "../base/logger.js";
import type { PeerRecord } from "../records/messages.js";
import { recordUrl, urlEndpoint } from "../limits/peer-url.js";
import type { PeerInfo, ToolDb, ToolDbEvents } from "../node/tooldb.js";
import { TypedEmitter } from "../base/typed-emitter.js";
import { type DialFailedEvent, unresponsivePenalty } from "../network/dialer.js";
import { CloseCode } from "../network/connection.js";
import { dialKey } from "../network/dial-target.js";
import { type CachedServer, ServerUrlCache } from "./server-url-cache.js";

export type ServerSource = "bootstrap" | "cache" | "gossip";
export type ServerLinkState = "known" | "dialing" | "linked" | "failed";

/** A server this client knows of, and how its link stands. */
export interface KnownServer {
  url: string;
  address?: string;
  source: ServerSource;
  state: ServerLinkState;
  lastGood?: number;
  failures: number;
  /** Times this client dropped it for leaving its requests unanswered (close code 4012), less those a good spell forgave: others are tried first. */
  unresponsive?: number;
  /** Not dialed again before this time (ms, the node's monotonic clock, `db.monotonic()`): after such a drop, a growing wait. */
  until?: number;
}

export interface ServerSelectionOptions {
  /** Servers to keep links to (default 2). */
  links: number;
  /** How often linked servers are asked for the servers they know (ms, default 30 s). */
  refreshInterval: number;
  /** Dial attempts per chosen server before another is tried (default 1 retry). */
  maxRetries: number;
  /** Remember servers between visits (default true). */
  cache: boolean;
  /**
   * Dial only wss:// servers (default: when the page itself was served over
   * https, where browsers block ws:// links as mixed content).
   */
  secureOnly: boolean;
}

const DEFAULTS: ServerSelectionOptions = { links: 2, refreshInterval: 30_000, maxRetries: 1, cache: true, secureOnly: false };

/** Whether this code runs in a page served over https. */
function inSecurePage(): boolean {
  return (globalThis as { location?: { protocol?: string } }).location?.protocol === "https:";
}
const SOURCE_ORDER: Record<ServerSource, number> = { bootstrap: 0, cache: 1, gossip: 2 };
/**
 * Servers a selection holds at most from gossip (as the node's own server
 * directory): past it a new one replaces the oldest gossiped server never
 * linked and not being dialed, or is dropped. Servers from the bootstrap
 * list and the cache (both bounded) are always held.
 */
export const MAX_KNOWN_SERVERS = 256;

/** What a dialing transport may offer beyond host:port (BrowserWebSocketNetwork does). */
interface UrlDialer {
  connectToUrl(url: string, opts?: { maxRetries?: number }): void;
}

/**
 * A client's choice of servers, the guide's hybrid approach: start from a
 * bootstrap list (`peers`) and the persistent peer cache, learn the topic's
 * other servers from the verified records servers gossip, keep links to N
 * of them (known-good first), replace a server that dies, and ask linked
 * servers now and then for servers that appeared since.
 */
export class ServerSelection extends TypedEmitter<{ change: [servers: KnownServer[]] }> {
  private static readonly attached = new WeakMap<ToolDb, ServerSelection>();

  /** The selection a platform entry attached to a client node, if any. */
  static of(db: ToolDb): ServerSelection | undefined {
    return ServerSelection.attached.get(db);
  }

  readonly options: ServerSelectionOptions;
  private readonly servers = new Map<string, KnownServer>();
  private readonly timers: TimerGroup;
  /** `fill` again when the first wait of a server dropped as unresponsive ends (`until`). */
  private readonly wake: Wake;
  private readonly log: LogFn;
  private readonly cache: ServerUrlCache | undefined;
  private readonly started: Promise<void>;
  private closed = false;
  /** The cache was read: until then nothing is dialed (known-good servers come first). */
  private loaded = false;
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly db: ToolDb,
    options: Partial<ServerSelectionOptions> = {},
  ) {
    super();
    this.options = { ...DEFAULTS, secureOnly: inSecurePage(), ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    this.log = createLogger("hybrid:servers", db.options.debug);
    this.timers = new TimerGroup(db.options.clock);
    this.wake = new Wake(this.timers, () => this.fill());
    const scheme = db.options.ssl ? "wss" : "ws";
    for (const peer of db.options.peers) {
      this.add({ url: `${scheme}://${peer.host.includes(":") ? `[${peer.host}]` : peer.host}:${peer.port}` }, "bootstrap");
    }
    if (this.options.cache) {
      const store = new db.options.storageAdapter(db, `${db.options.storageName}.servers`);
      this.cache = new ServerUrlCache(store, this.log);
    }
    // Listen at once: links and gossip may come while the cache is read.
    this.listen("peer-connect", (info) => this.onLinked(info));
    this.listen("peer-disconnect", (info) => this.onUnlinked(info));
    this.listen("dial-failed", (event) => this.onDialFailed(event));
    this.listen("server-recovered", (info) => this.onRecovered(info));
    this.listen("servers", (records) => this.onGossip(records));
    this.redialWhenOnline();
    // Servers from the bootstrap list (`peers`, `addServer`): their confirmations let the client's writes go (server-trust.ts).
    this.listeners.push(db.serverTrust.addList((link) => this.byEndpoint(link.host, link.port)?.source === "bootstrap"));
    this.started = this.start();
    // Heard here too: nobody may ask for `ready`, and a failed start must not be an unhandled rejection.
    this.started.catch((err: unknown) => this.log("server selection did not start: %s", errorText(err)));
    ServerSelection.attached.set(db, this);
  }

  /** Resolves once the cache is read and the first links are being made. */
  get ready(): Promise<void> {
    return this.started;
  }

  /** Every server known, with its link state (for status pages and tests). */
  list(): KnownServer[] {
    return [...this.servers.values()].map((s) => ({ ...s }));
  }

  /** Learns a server by URL (e.g. from an app's own list) and links if a slot is free. */
  addServer(url: string): void {
    this.add({ url }, "bootstrap");
    this.fill();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.silence();
    this.timers.clearAll();
    for (const off of this.listeners.splice(0)) off();
    await this.started.catch(() => undefined);
    await this.cache?.close();
  }

  private async start(): Promise<void> {
    for (const entry of (await this.cache?.load()) ?? []) this.add(entry, "cache");
    if (this.closed) return;
    this.loaded = true;
    // Links that opened and servers learned before the selection ran (the db's own `peers` dial early).
    this.onGossip(this.db.knownServers());
    for (const session of this.db.network.peers) this.onLinked(session);
    this.timers.every(this.options.refreshInterval, () => this.refresh());
    this.fill();
  }

  /**
   * Back online (the browser's `online` event), every server waiting out a
   * reconnect delay is dialed at once: after a long outage the delay had
   * grown to `maxReconnectDelay` (30 s), and a page sat offline that long.
   */
  private redialWhenOnline(): void {
    const events = globalThis as { addEventListener?: (type: string, fn: () => void) => void; removeEventListener?: (type: string, fn: () => void) => void };
    if (typeof events.addEventListener !== "function" || typeof events.removeEventListener !== "function") return;
    const onOnline = () => {
      this.log("back online: dialing the servers that wait for their next attempt");
      for (const t of this.db.network.dialTargets()) if (t.state === "waiting") this.db.network.connectTo(t.host, t.port);
    };
    events.addEventListener("online", onOnline);
    this.listeners.push(() => events.removeEventListener!("online", onOnline));
  }

  private listen<K extends keyof ToolDbEvents & string>(event: K, fn: (...args: ToolDbEvents[K]) => void): void {
    this.db.on(event, fn);
    this.listeners.push(() => this.db.off(event, fn));
  }

  private add(entry: CachedServer, source: ServerSource): KnownServer | undefined {
    if (this.options.secureOnly && !entry.url.startsWith("wss:")) return undefined;
    const existing = this.servers.get(entry.url);
    if (existing) {
      existing.address ??= entry.address;
      if ((entry.lastGood ?? 0) > (existing.lastGood ?? 0)) existing.lastGood = entry.lastGood;
      return existing;
    }
    if (source === "gossip" && this.servers.size >= MAX_KNOWN_SERVERS && !this.dropStaleGossiped()) return undefined;
    const server: KnownServer = { url: entry.url, address: entry.address, source, state: "known", lastGood: entry.lastGood, failures: 0 };
    this.servers.set(entry.url, server);
    return server;
  }

  /** Forgets the oldest gossiped server that never linked and is not being dialed; false when there is none. */
  private dropStaleGossiped(): boolean {
    for (const [url, s] of this.servers) {
      if (s.source === "gossip" && s.lastGood === undefined && (s.state === "known" || s.state === "failed")) {
        this.servers.delete(url);
        return true;
      }
    }
    return false;
  }

  private byEndpoint(host: string | undefined, port: number | undefined): KnownServer | undefined {
    if (host === undefined || port === undefined) return undefined;
    const key = dialKey(host, port);
    for (const server of this.servers.values()) {
      const e = urlEndpoint(server.url);
      if (dialKey(e.host, e.port) === key) return server;
    }
    return undefined;
  }

  private onLinked(info: Pick<PeerInfo, "isServer" | "outgoing" | "host" | "port" | "address">): void {
    if (!info.isServer || !info.outgoing) return;
    const server = this.byEndpoint(info.host, info.port);
    if (!server) return;
    server.state = "linked";
    server.address = info.address;
    server.failures = 0;
    server.lastGood = this.db.now();
    void this.cache?.save({ url: server.url, address: server.address, lastGood: server.lastGood });
    this.changed();
  }

  private onUnlinked(info: PeerInfo & { code?: number }): void {
    if (!info.isServer) return;
    const server = this.byEndpoint(info.host, info.port);
    if (server && info.code === CloseCode.UNRESPONSIVE && info.host !== undefined && info.port !== undefined) {
      // Dropped for leaving what we asked unanswered: not redialed by the dialer; the other servers first, this one after a growing wait.
      this.db.network.disconnectFrom(info.host, info.port);
      server.unresponsive = (server.unresponsive ?? 0) + 1;
      server.state = "known";
      const wait = unresponsivePenalty(server.unresponsive, this.db.options.unresponsivePenalty);
      server.until = this.db.monotonic() + wait;
      this.log("%s left requests unanswered: tried again in %d ms at the earliest", server.url, wait);
    } else if (server?.state === "linked") {
      // Suspect until it answers again: the dialer retries it, and another server takes the slot now.
      server.state = "dialing";
      server.failures = 1;
    }
    this.fill();
  }

  /** A server dropped as unresponsive served a good spell (src/node/server-standing.ts): ranked and waited on one drop less. */
  private onRecovered(info: PeerInfo): void {
    const server = this.byEndpoint(info.host, info.port);
    if (!server?.unresponsive) return;
    server.unresponsive--;
    if (server.unresponsive === 0) {
      delete server.unresponsive;
      delete server.until;
    }
    this.log("%s served well again: %d drops as unresponsive left", server.url, server.unresponsive ?? 0);
    this.changed();
  }

  private onDialFailed(event: DialFailedEvent): void {
    const server = this.byEndpoint(event.host, event.port);
    if (!server) return;
    server.failures++;
    if (event.final) server.state = "failed";
    this.fill();
  }

  private onGossip(records: PeerRecord[]): void {
    let added = false;
    for (const record of records) {
      const url = recordUrl(record);
      if (!url || this.servers.has(url) || !this.add({ url, address: record.address }, "gossip")) continue;
      void this.cache?.save({ url, address: record.address });
      added = true;
    }
    if (added) this.fill();
  }

  /** Dials the best candidates until N servers are linked or being dialed for the first time. */
  private fill(): void {
    if (this.closed || !this.loaded) return;
    const linkedAddresses = new Set(this.db.network.peers.filter((p) => p.isServer).map((p) => p.address));
    const busy = [...this.servers.values()].filter((s) => s.state === "linked" || (s.state === "dialing" && s.failures === 0)).length;
    let free = this.options.links - Math.max(busy, linkedAddresses.size);
    const now = this.db.monotonic();
    const candidates = [...this.servers.values()]
      .filter((s) => s.state === "known" && (s.until ?? 0) <= now && !(s.address && linkedAddresses.has(s.address)))
      .sort((a, b) => (a.unresponsive ?? 0) - (b.unresponsive ?? 0) || (b.lastGood ?? 0) - (a.lastGood ?? 0) || SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source]);
    for (const server of candidates) {
      if (free <= 0) break;
      this.dial(server);
      free--;
    }
    // Again when the first wait still running ends. Before, one timer per drop, set for the wait's length: it can fire
    // a millisecond before `now` reaches `until` (Wake); the server was then not due, and waited for the next refresh.
    let next = Infinity;
    for (const s of this.servers.values()) if (s.state === "known" && s.until !== undefined && s.until > now) next = Math.min(next, s.until);
    if (next !== Infinity) this.wake.at(next);
    // Every candidate failed and nothing is linked: give the failed ones another round.
    if (busy === 0 && candidates.length === 0 && linkedAddresses.size === 0) {
      for (const server of this.servers.values()) if (server.state === "failed") server.state = "known";
    }
    this.changed();
  }

  private dial(server: KnownServer): void {
    server.state = "dialing";
    server.failures = 0;
    this.log("linking %s (%s)", server.url, server.source);
    const network = this.db.network as unknown as Partial<UrlDialer>;
    try {
      if (typeof network.connectToUrl === "function") {
        network.connectToUrl(server.url, { maxRetries: this.options.maxRetries });
      } else {
        const { host, port } = urlEndpoint(server.url);
        this.db.network.connectTo(host, port, { maxRetries: this.options.maxRetries });
      }
    } catch (err) {
      // A URL no node can dial (port 0, say, from a cached or listed record): INVALID_ARGUMENT at once.
      this.log("cannot dial %s: %s", server.url, errorText(err));
      server.state = "failed";
    }
  }

  private refresh(): void {
    for (const session of this.db.network.peers) if (session.isServer) this.db.network.requestServers(session);
    this.fill();
  }

  private changed(): void {
    this.emit("change", this.list());
  }
}
