/**
 * Two tabs of one app (same origin, default storageName) share their
 * IndexedDB stores. Both tabs must reach the server. Before, both loaded one
 * peer identity: the server closed the second tab's link as a duplicate of
 * the first tab's node, the second tab parked its dial target with no event,
 * and it stayed offline even after the first tab closed (found by an outside
 * check). Now the identity is held under a Web Lock; the second tab runs
 * under fresh keys of its own (node/node-keys.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import type { ToolDb } from "../../src/index.js";
import { launchChromium, openPage, servePages, type PageServer } from "../helpers/chromium.js";
import { closeAll, portOf, startServer } from "../helpers/nodes.js";

const T = 10_000;

describe("two tabs of one origin", () => {
  let browser: Browser;
  let pages: PageServer;
  let server: ToolDb;
  before(async () => {
    server = await startServer({ topic: "two-tabs" });
    pages = await servePages();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    await closeAll(server);
  });

  async function tab(context: Awaited<ReturnType<Browser["newContext"]>>): Promise<Page> {
    const { page } = await openPage(browser, pages.url, context);
    await page.evaluate(async (port) => {
      const w = window as any;
      const db = new w.tooldb.ToolDb({ topic: "two-tabs", peers: [{ host: "127.0.0.1", port }], wait: 50, maxReconnectDelay: 400, handshakeTimeout: 2000 });
      w.db = db;
      await db.ready;
    }, portOf(server));
    return page;
  }
  const linked = (page: Page) => page.waitForFunction(() => (window as any).db.network.peers.some((p: any) => p.isServer), undefined, { timeout: T, polling: 20 });

  it("both tabs link to the server, and the second keeps working once the first closes", { timeout: 60_000 }, async () => {
    const context = await browser.newContext();
    try {
      const first = await tab(context);
      await linked(first);
      const second = await tab(context);
      await linked(second); // before: parked as a duplicate of the first tab, for good
      const [a, b] = await Promise.all([first, second].map((p) => p.evaluate(() => (window as any).db.nodeAddress() as string)));
      assert.notEqual(a, b, "each tab its own peer identity");
      await first.close();
      await linked(second);
      await second.evaluate(() => (window as any).db.putData("from-second-tab", "hello"));
      const deadline = Date.now() + T;
      while ((await server.getData("from-second-tab")) !== "hello") {
        assert.ok(Date.now() < deadline, "the second tab's put did not reach the server");
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await context.close();
    }
  });
});
