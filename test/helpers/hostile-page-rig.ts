/**
 * What the page intake tests (test/browser/client-intake-*.test.ts) stand
 * on: an honest server at 127.0.0.3 with a writer linked to it, hostile
 * servers on loopback addresses of their own, the page server and one
 * Chromium; and pages linked to every one of those servers. Each test says
 * itself how its hostile servers answer and what the page counts.
 */
import { after, before } from "node:test";
import type { Browser, Page } from "playwright-core";
import { ToolDb } from "../../src/index.js";
import { randomId } from "../../src/base/random.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import { launchChromium, openPage, servePages, type PageServer } from "./chromium.js";
import { FAST, closeAll, portOf, waitUntil } from "./nodes.js";
import { startPageDb } from "./page-db.js";
import { HostileServer, type HostileLink } from "./hostile-server.js";
import type { Frame } from "./raw-peer.js";

const HONEST_HOST = "127.0.0.3";

export interface LinkedPageOptions {
  /** Runs in the new page before its db starts (to watch its WebSocket frames). */
  beforeStart?: (page: Page) => Promise<void>;
  /** Off: the page keeps a link to every server it is given. */
  serverSelection?: false;
}

export class HostilePageRig {
  browser!: Browser;
  pages!: PageServer;
  honest!: ToolDb;
  writer!: ToolDb;
  readonly hostiles: HostileServer[] = [];

  constructor(
    readonly topic: string,
    private readonly hostileHosts: readonly string[],
  ) {}

  async start(): Promise<void> {
    this.honest = new ToolDb({ server: true, host: HONEST_HOST, port: 0, topic: this.topic, ...FAST });
    await this.honest.ready;
    this.writer = new ToolDb({ topic: this.topic, ...FAST, storageName: `${this.topic}-w-${randomId()}`, peers: [{ host: HONEST_HOST, port: portOf(this.honest) }] });
    await this.writer.ready;
    await waitUntil(() => this.writer.network.peers.length === 1, 5000, "writer link");
    for (const host of this.hostileHosts) this.hostiles.push(await HostileServer.start(this.topic, host));
    this.pages = await servePages();
    this.browser = await launchChromium();
  }

  async close(): Promise<void> {
    await this.browser?.close();
    await this.pages?.close();
    await Promise.all(this.hostiles.map((h) => h.close()));
    await closeAll(this.writer, this.honest);
  }

  /** A new page whose db is linked to every hostile server, then the honest one (`links` of them). */
  async openLinkedPage(opts: LinkedPageOptions = {}): Promise<{ page: Page; errors: string[]; links: number }> {
    const { page, errors } = await openPage(this.browser, this.pages.url);
    await opts.beforeStart?.(page);
    const servers = [...this.hostiles.map((h) => ({ host: h.host, port: h.port })), { host: HONEST_HOST, port: portOf(this.honest) }];
    const selection = opts.serverSelection === false ? { serverSelection: false as const } : {};
    await startPageDb(page, { topic: this.topic, peers: servers, ...selection, storageName: `${this.topic}-${randomId()}` });
    await page.waitForFunction((n) => (window as any).db.network.peers.filter((p: any) => p.isServer).length === n, servers.length, { timeout: 20_000 });
    return { page, errors, links: servers.length };
  }

  /** True once the honest server holds exactly one subscription to `key` (the page's). */
  honestHoldsSubscription(key: string): boolean {
    return (this.honest.remoteSubscriptions.subscribers(key)?.size ?? 0) === 1;
  }
}

/** One rig for a test file: started before its tests, closed after them. */
export function fileHostilePageRig(topic: string, hostileHosts: readonly string[]): HostilePageRig {
  const rig = new HostilePageRig(topic, hostileHosts);
  before(() => rig.start());
  after(() => rig.close());
  return rig;
}

/**
 * Answers a page's probe as any server does (an unknown function), so the
 * page does not drop the hostile server as unresponsive; true when `frame`
 * was one.
 */
export function answerProbe(link: HostileLink, frame: Frame): boolean {
  if (frame.type !== "function") return false;
  link.send({ type: "functionReturn", id: frame.id, code: "NOT_FOUND", return: null });
  return true;
}

/** Reads `window[name]` in `page`. */
export function pageGlobal<T>(page: Page, name: string): Promise<T> {
  return page.evaluate((n) => (window as any)[n] as T, name);
}

/** The record of `key` the page's db has stored, or null. */
export function pageStored(page: Page, key: string): Promise<ToolDbRecord | null> {
  return page.evaluate(async (k) => JSON.parse((await (window as any).db.store.get(k)) ?? "null") as ToolDbRecord | null, key);
}
