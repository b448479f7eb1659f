/**
 * The HTTP fronts of a server (the `serve --web`/TLS port and the metrics
 * port) under the same kind of limits as its WebSocket port: connections per
 * IP and in total, and timeouts for headers, whole requests and idle
 * sockets, so slow or silent clients (slowloris) cannot hold sockets. A
 * request handler's error becomes a 500, or a closed socket once the headers
 * are out, never an unhandled rejection.
 */
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface HttpLimits {
  /** Open HTTP connections per client IP (WebSocket links that upgraded are counted by the network instead). */
  maxConnectionsPerIp: number;
  /**
   * Open HTTP connections in total (WebSocket links that upgraded are not
   * counted). At the cap the oldest one makes room for a newcomer, as on the
   * link port: a flood of silent sockets never locks a newcomer out.
   */
  maxConnections: number;
  /** A request's headers must arrive within this (ms). */
  headersTimeout: number;
  /** A whole request must arrive within this (ms). */
  requestTimeout: number;
  /** A socket with no traffic either way is closed after this (ms); also the keep-alive wait. */
  idleTimeout: number;
  /** IPs the per-IP cap does not apply to (a reverse proxy on this host). */
  exemptIps: readonly string[];
  /**
   * Requests one connection may have unanswered at once (HTTP/1.1
   * pipelining; browsers and Prometheus send one at a time): past it the
   * connection is closed and its queued requests do nothing.
   */
  maxPipelined: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxConnectionsPerIp: 32,
  maxConnections: 512,
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  idleTimeout: 30_000,
  exemptIps: ["127.0.0.1", "::1", "::ffff:127.0.0.1"],
  maxPipelined: 4,
};

/** Options for `http.createServer`/`https.createServer` that enforce the timeouts (checked every second). */
export function httpServerOptions(limits: HttpLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeout,
    requestTimeout: Math.max(limits.requestTimeout, limits.headersTimeout),
    keepAliveTimeout: limits.idleTimeout,
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeout),
  };
}

/**
 * Why a connection was closed, as a stable label (the metric
 * `tooldb_http_refused_total{reason}`): `per_ip` a newcomer over its IP's
 * cap, `total` the oldest closed to make room at the total cap, `pipelined`
 * one with more requests unanswered than `maxPipelined`.
 */
export const HTTP_REFUSAL_REASONS = ["per_ip", "total", "pipelined"] as const;
export type HttpRefusalReason = (typeof HTTP_REFUSAL_REASONS)[number];

export interface HttpGuard {
  /** Open (not upgraded) connections in total and from one IP. */
  open(ip?: string): number;
  /** Connections closed for being over a cap: newcomers over the per-IP cap, and the oldest ones closed to make room. */
  readonly refused: number;
  /** The same by reason (they add up to `refused`). */
  readonly refusedBy: Readonly<Record<HttpRefusalReason, number>>;
}

export interface GuardOptions {
  /** A WebSocket server takes upgrades on this server: upgraded sockets leave the HTTP count. */
  upgrades?: boolean;
  /** `reason` is a sentence for logs, `code` its stable label. */
  onRefused?: (ip: string, reason: string, code: HttpRefusalReason) => void;
}

/**
 * Counts a server's connections per IP and closes, at once, a newcomer over
 * its IP's cap; at the total cap the oldest connection makes room (no
 * legitimate request lasts long, so the oldest are slow or silent sockets).
 * Closes idle sockets. Upgraded sockets (WebSocket links) leave the count:
 * the network's own limits take them over. Node's `server.maxConnections`
 * is not used: it counts upgraded sockets too, and drops the newcomer.
 */
export function guardHttpServer(server: Server, limits: HttpLimits, opts: GuardOptions = {}): HttpGuard {
  const refusedBy: Record<HttpRefusalReason, number> = { per_ip: 0, total: 0, pipelined: 0 };
  let refused = 0;
  const refuse = (code: HttpRefusalReason, ip: string, reason: string) => {
    refused++;
    refusedBy[code]++;
    opts.onRefused?.(ip, reason, code);
  };
  const perIp = new Map<string, number>();
  /**
   * Counted sockets by remote address and port, oldest first (at most
   * maxConnections + 1: finding the first is cheap). Keyed so because on a
   * TLS front the socket that upgrades is the TLS socket over the one accepted.
   */
  const held = new Map<string, { socket: Socket; ip: string }>();
  const exempt = new Set(limits.exemptIps);
  const keyOf = (socket: Socket) => `${socket.remoteAddress ?? ""} ${socket.remotePort ?? ""}`;
  const release = (key: string, socket?: Socket) => {
    const entry = held.get(key);
    if (!entry || (socket && entry.socket !== socket)) return;
    held.delete(key);
    const n = (perIp.get(entry.ip) ?? 1) - 1;
    if (n > 0) perIp.set(entry.ip, n);
    else perIp.delete(entry.ip);
  };
  server.setTimeout(limits.idleTimeout, (socket) => socket.destroy());
  server.on("connection", (socket: Socket) => {
    const ip = socket.remoteAddress ?? "";
    const fromIp = perIp.get(ip) ?? 0;
    if (!exempt.has(ip) && fromIp >= limits.maxConnectionsPerIp) {
      socket.destroy();
      refuse("per_ip", ip, `too many HTTP connections from ${ip} (${limits.maxConnectionsPerIp})`);
      return;
    }
    if (held.size >= limits.maxConnections) {
      const [oldestKey, oldest] = held.entries().next().value as [string, { socket: Socket; ip: string }];
      release(oldestKey);
      oldest.socket.destroy();
      refuse("total", oldest.ip, `closed to make room: too many HTTP connections (${limits.maxConnections}); this one from ${oldest.ip} was the oldest`);
    }
    const key = keyOf(socket);
    release(key); // a closed socket's entry whose 'close' has not come yet
    held.set(key, { socket, ip });
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    socket.once("close", () => release(key, socket));
  });
  // Before the route: a connection over its pipelined requests is closed, and safeRoute skips requests of a closed one.
  const unanswered = new WeakMap<Socket, number>();
  server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as Socket;
    const n = (unanswered.get(socket) ?? 0) + 1;
    unanswered.set(socket, n);
    res.once("close", () => unanswered.set(socket, (unanswered.get(socket) ?? 1) - 1));
    if (n <= limits.maxPipelined || socket.destroyed) return;
    socket.destroy();
    refuse("pipelined", socket.remoteAddress ?? "", `more than ${limits.maxPipelined} requests unanswered on one connection (pipelined, not read)`);
  });
  // Only beside a WebSocket server: an 'upgrade' listener alone would leave upgrade requests unanswered.
  if (opts.upgrades) server.on("upgrade", (req: IncomingMessage) => release(keyOf(req.socket as Socket)));
  return {
    open: (ip) => (ip === undefined ? held.size : (perIp.get(ip) ?? 0)),
    get refused() {
      return refused;
    },
    refusedBy,
  };
}

export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/**
 * A request listener that runs `route` and turns whatever it throws or
 * rejects with into a 500 (headers not sent yet) or a destroyed socket
 * (headers sent: the client sees a truncated response, never a wrong one).
 * Every answer carries `X-Content-Type-Options: nosniff` (a browser takes
 * each body as the type it is sent as, never sniffs a script or a page out
 * of it), the 500 and any a route writes alike.
 */
export function safeRoute(route: HttpRoute, onError?: (err: unknown, req: IncomingMessage) => void): (req: IncomingMessage, res: ServerResponse) => void {
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    onError?.(err, req);
    if (res.headersSent || res.writableEnded) res.destroy();
    else res.writeHead(500, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end("internal error\n");
  };
  return (req, res) => {
    // A request queued on a connection closed since (e.g. by guardHttpServer's pipelining cap) costs nothing.
    if (req.socket.destroyed) return;
    res.setHeader("x-content-type-options", "nosniff");
    try {
      const done = route(req, res);
      if (done) done.catch((err: unknown) => fail(req, res, err));
    } catch (err) {
      fail(req, res, err);
    }
  };
}

/** The path of a request, or undefined when its target is not a valid URL path (answer 400). */
export function requestPath(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? "/", "http://host.invalid").pathname;
  } catch {
    return undefined;
  }
}
