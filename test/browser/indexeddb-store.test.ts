import { after } from "node:test";
import type { Browser, Page } from "playwright-core";
import { storageAdapterSuite } from "../compliance/storage-suite.js";
import { launchChromium, openPage, servePages, type PageServer } from "../helpers/chromium.js";
import { PageStore } from "../helpers/page-store.js";

// The shared storage suite, on IndexedDbStore running inside Chromium.
let started: Promise<{ browser: Browser; server: PageServer; page: Page }> | undefined;
function inPage(): Promise<Page> {
  started ??= (async () => {
    const server = await servePages();
    const browser = await launchChromium();
    const { page } = await openPage(browser, server.url);
    return { browser, server, page };
  })();
  return started.then((s) => s.page);
}

async function shutdown(): Promise<void> {
  if (!started) return;
  const { browser, server } = await started;
  await browser.close();
  await server.close();
}

storageAdapterSuite("IndexedDbStore (in Chromium)", {
  create: async (name) => new PageStore(await inPage(), name),
  reopen: async (name) => new PageStore(await inPage(), name),
  cleanup: shutdown,
});
after(shutdown);
