import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
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
  const handler = (req: IncomingMessage, res: ServerResponse) => void respond(req, res, options.web, page);
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

async function respond(req: IncomingMessage, res: ServerResponse, web: boolean, page: string): Promise<void> {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  try {
    if (web && path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    } else if (web && path === "/tooldb-dht.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(await readFile(BUNDLE_URL));
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
