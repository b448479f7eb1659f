/**
 * Chromium for tests: Debian's `chromium` driven by playwright-core (no
 * browser download), headless, with the flags that keep it off the network
 * (only loopback is reachable here), and a loopback HTTP server for the
 * browser bundle and test pages. One browser process per test file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { BROWSER_BUNDLE } from "../../build/browser-bundle.js";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** The page every test starts from: the bundle's exports on `window.tooldb`. */
export const TEST_PAGE = `<!doctype html><meta charset="utf-8"><title>tooldb-dht test page</title>
<script type="module">import * as tooldb from "/tooldb-dht.js"; window.tooldb = tooldb;</script>`;

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface PageServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `/tooldb-dht.js` (the built bundle), `/` (TEST_PAGE) and extra routes on 127.0.0.1. */
export async function servePages(routes: Record<string, Route> = {}): Promise<PageServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const route = routes[path] ?? DEFAULT_ROUTES[path];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    Promise.resolve(route(req, res)).catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const DEFAULT_ROUTES: Record<string, Route> = {
  "/": (_req, res) => void res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(TEST_PAGE),
  "/tooldb-dht.js": async (_req, res) => {
    res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(await readFile(BROWSER_BUNDLE));
  },
};

export interface TestPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught errors and console errors seen in the page. */
  errors: string[];
}

/** A page at `url` once `window.tooldb` is there (a new context unless one is given: its own IndexedDB). */
export async function openPage(browser: Browser, url: string, context?: BrowserContext): Promise<TestPage> {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.goto(url);
  await page.waitForFunction(() => "tooldb" in window);
  return { page, context: ctx, errors };
}
