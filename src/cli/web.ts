import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { statusPage } from "./status-page.js";

/** The browser bundle, beside this file's compiled tree (dist/src/cli -> dist/browser). */
const BUNDLE_URL = new URL("../../browser/tooldb-dht.js", import.meta.url);

export interface WebFrontOptions {
  host: string;
  port: number;
  topic: string;
  /** PEM files: serve https and wss on the port. */
  tlsCert?: string;
  tlsKey?: string;
  /** Serve the status page (/) and the browser bundle (/tooldb-dht.js). */
  web: boolean;
  /** With `web`: also serve this directory's files (one level, by name: /chat.html), e.g. an app's pages. */
  webDir?: string;
}

export interface WebFront {
  /** Hand it to ToolDb as `httpServer`: WebSocket links upgrade on it. */
  server: Server;
  port: number;
  secure: boolean;
  close(): Promise<void>;
}

/**
 * The HTTP(S) server of `tooldb-dht serve` when it needs one of its own:
 * TLS for servers not behind a proxy, and/or the status page. WebSocket
 * links upgrade on it; plain HTTP requests get the page or a short answer.
 */
export async function startWebFront(options: WebFrontOptions): Promise<WebFront> {
  if (!options.tlsCert !== !options.tlsKey) throw new Error("--tls-cert and --tls-key go together");
  const secure = options.tlsCert !== undefined;
  const page = statusPage(options.topic);
  const handler = (req: IncomingMessage, res: ServerResponse) => void respond(req, res, options.web, page, options.webDir);
  const server = secure
    ? (createHttpsServer({ cert: await readFile(options.tlsCert!), key: await readFile(options.tlsKey!) }, handler) as unknown as Server)
    : createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    secure,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
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

async function respond(req: IncomingMessage, res: ServerResponse, web: boolean, page: string, webDir?: string): Promise<void> {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const file = web ? webDirFile(webDir, path) : undefined;
  try {
    if (web && path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    } else if (web && path === "/tooldb-dht.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(await readFile(BUNDLE_URL));
    } else if (file) {
      const body = await readFile(file).catch(() => undefined);
      if (body) res.writeHead(200, { "content-type": CONTENT_TYPES[extname(file)]! }).end(body);
      else res.writeHead(404).end();
    } else if (path === "/") {
      res.writeHead(426, { "content-type": "text/plain" }).end("ToolDb WebSocket endpoint (serve --web shows a status page)\n");
    } else {
      res.writeHead(404).end();
    }
  } catch (err) {
    res.writeHead(500, { "content-type": "text/plain" }).end(`cannot serve ${path}: ${String(err)}\n`);
  }
}

/** The URL signed into the record: --public-url, else wss://host:port for a TLS server with a concrete host. */
export function publicUrlFor(flag: string | undefined, secure: boolean, host: string, port: number): string | undefined {
  if (flag !== undefined || !secure || host === "0.0.0.0" || host === "::") return flag;
  return `wss://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
