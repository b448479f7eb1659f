/**
 * Chromium for tests, driven by playwright-core (which downloads no browser),
 * headless, with the flags that keep it off the network (only loopback is
 * reachable here), and a loopback HTTP server for the browser bundle and
 * test pages. One browser process per test file.
 *
 * Which Chromium, in this order: `CHROMIUM_PATH` (must be an executable
 * file, or every browser test fails at once saying so); the system's
 * (Debian's `chromium`, or Chrome); else the one that `npm ci` brings, the
 * devDependency @sparticuz/chromium (a headless Chromium inside the npm
 * package, unpacked to the temp dir on first use). So `npm ci && npm test`
 * needs no apt step. Launches are bounded: a browser that does not start
 * fails the test within LAUNCH_TIMEOUT_MS with one line that says why.
 */
import { accessSync, constants, statSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { BROWSER_BUNDLE } from "../../build/browser-bundle.js";

/** Where the system keeps Chromium or Chrome on Linux. */
const SYSTEM_CHROMIUMS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];
/** Unpacking the npm package's browser takes 10-20 s the first time on this machine. */
const UNPACK_TIMEOUT_MS = 120_000;
export const LAUNCH_TIMEOUT_MS = 30_000;

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** No usable Chromium: the message is one line, naming what is missing and how to get it. */
export class ChromiumUnavailable extends Error {
  override name = "ChromiumUnavailable";
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChromiumUnavailable(`${what} took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function findChromium(): Promise<{ path: string; source: string }> {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (isExecutableFile(fromEnv)) return { path: fromEnv, source: "CHROMIUM_PATH" };
    throw new ChromiumUnavailable(`CHROMIUM_PATH=${fromEnv} is not an executable file: fix or unset it (then the system's Chromium or npm's @sparticuz/chromium is used)`);
  }
  const system = SYSTEM_CHROMIUMS.find(isExecutableFile);
  if (system) return { path: system, source: "system" };
  let packaged: { default: { executablePath(): Promise<string> } };
  try {
    packaged = await import("@sparticuz/chromium");
  } catch {
    throw new ChromiumUnavailable("no Chromium: none in CHROMIUM_PATH or /usr/bin, and the devDependency @sparticuz/chromium is not installed (run npm ci, or apt-get install chromium)");
  }
  try {
    return { path: await withTimeout(packaged.default.executablePath(), UNPACK_TIMEOUT_MS, "unpacking @sparticuz/chromium"), source: "@sparticuz/chromium" };
  } catch (err) {
    throw new ChromiumUnavailable(`@sparticuz/chromium could not be unpacked: ${err instanceof Error ? err.message : String(err)}`);
  }
}

let found: Promise<{ path: string; source: string }> | undefined;

/** The Chromium the tests use, and where it came from; resolved once per process. */
export function resolveChromium(): Promise<{ path: string; source: string }> {
  found ??= findChromium();
  return found;
}

export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const { path, source } = await resolveChromium();
  try {
    return await chromium.launch({ executablePath: path, headless: true, timeout: LAUNCH_TIMEOUT_MS, args: [...CHROMIUM_ARGS, ...extraArgs] });
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split("\n")[0];
    throw new ChromiumUnavailable(`Chromium (${source}: ${path}) did not start: ${first}`);
  }
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
