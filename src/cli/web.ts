import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { errorText } from "../base/errors.js";
import { createLogger } from "../base/logger.js";
import { DEFAULT_HTTP_LIMITS, type HttpGuard, type HttpLimits, guardHttpServer, httpServerOptions, requestPath, safeRoute } from "../limits/http-guard.js";
import { STATUS_PAGE_CSP, statusPage } from "./status-page.js";
import type { TlsPems } from "./tls-files.js";

/** The browser bundle, beside this file's compiled tree (dist/src/cli -> dist/browser). */
export const BUNDLE_URL = new URL("../../browser/tooldb-dht.js", import.meta.url);

const log = createLogger("web");

export interface WebFrontOptions {
  host: string;
  port: number;
  topic: string;
  /** A certificate and its key (PEM, read by tls-files.ts): serve https and wss on the port. */
  tls?: TlsPems;
  /** Serve the status page (/) and the browser bundle (/tooldb-dht.js). */
  web: boolean;
  /** With `web`: also serve this directory's files (one level, by name: /chat.html), e.g. an app's pages. */
  webDir?: string;
  /** Connection caps and timeouts (default DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>;
  /** Where the browser bundle is read from (default: dist/browser of this package). */
  bundle?: URL | string;
}

export interface WebFront {
  /** Hand it to ToolDb as `httpServer`: WebSocket links upgrade on it. */
  server: Server;
  port: number;
  secure: boolean;
  guard: HttpGuard;
  close(): Promise<void>;
}

/**
 * The HTTP(S) server of `tooldb-dht serve` when it needs one of its own:
 * TLS for servers not behind a proxy, and/or the status page. WebSocket
 * links upgrade on it; plain HTTP requests get the page or a short answer.
 * No request can stop it: a failing route answers 500 (or closes its socket
 * once headers are out), a malformed target 400, and per-IP caps and
 * timeouts bound what slow clients hold.
 */
export async function startWebFront(options: WebFrontOptions): Promise<WebFront> {
  const secure = options.tls !== undefined;
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  const page = statusPage(options.topic);
  const bundle = new BundleFile(options.bundle ?? BUNDLE_URL);
  const handler = safeRoute(
    (req, res) => respond(req, res, options.web, page, bundle, options.webDir),
    (err, req) => log("request %s failed: %s", JSON.stringify(req.url?.slice(0, 200)), errorText(err)),
  );
  const serverOptions = httpServerOptions(limits);
  const server = secure
    ? // A TLS handshake has the headers timeout too (Node's default, 120 s, held silent sockets that long).
      (createHttpsServer({ ...serverOptions, handshakeTimeout: limits.headersTimeout, cert: options.tls!.cert, key: options.tls!.key }, handler) as unknown as Server)
    : createHttpServer(serverOptions, handler);
  const guard = guardHttpServer(server, limits, { upgrades: true, onRefused: (_ip, reason) => log("refused: %s", reason) });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // After listening, a socket error must not crash the process.
  server.on("error", (err) => log("server error: %s", errorText(err)));
  let closing: Promise<void> | undefined;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    secure,
    guard,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/** Content types of the files a --web-dir holds. */
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** A --web-dir file for a request path: a plain name in the directory itself (no subfolders, no dot files, no ..). */
function webDirFile(dir: string | undefined, path: string): string | undefined {
  if (!dir || !/^\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(path)) return undefined;
  const type = CONTENT_TYPES[extname(path)];
  return type ? join(dir, path.slice(1)) : undefined;
}

async function respond(req: IncomingMessage, res: ServerResponse, web: boolean, page: string, bundle: BundleFile, webDir?: string): Promise<void> {
  const path = requestPath(req);
  const file = web && path !== undefined ? webDirFile(webDir, path) : undefined;
  if (path === undefined) {
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end("bad request target\n");
  } else if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
  } else if (web && path === "/") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-security-policy": STATUS_PAGE_CSP }).end(page);
  } else if (web && path === "/tooldb-dht.js") {
    // Read before the headers go out: a missing bundle is a clean 500, never a half answer.
    const body = await bundle.read();
    res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(body);
  } else if (file) {
    // An app's own files get nosniff (safeRoute) but no Content-Security-Policy: what one could
    // impose here would break apps that load scripts, styles or peers from elsewhere; the app sets its own (<meta>).
    const body = await readFile(file).catch(() => undefined);
    if (body) res.writeHead(200, { "content-type": CONTENT_TYPES[extname(file)]! }).end(body);
    else res.writeHead(404).end();
  } else if (path === "/") {
    res.writeHead(426, { "content-type": "text/plain" }).end("ToolDb WebSocket endpoint (serve --web shows a status page)\n");
  } else {
    res.writeHead(404).end();
  }
}

/** The browser bundle, read once and kept (a failed read is retried on the next request). */
class BundleFile {
  private content: Promise<Buffer> | undefined;
  constructor(private readonly path: URL | string) {}

  read(): Promise<Buffer> {
    this.content ??= readFile(this.path).catch((err: unknown) => {
      this.content = undefined;
      throw new Error(`browser bundle not readable at ${String(this.path)}: ${errorText(err)}`);
    });
    return this.content;
  }
}

/** The URL signed into the record: --public-url, else wss://host:port for a TLS server with a concrete host. */
export function publicUrlFor(flag: string | undefined, secure: boolean, host: string, port: number): string | undefined {
  if (flag !== undefined || !secure || host === "0.0.0.0" || host === "::") return flag;
  return `wss://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
