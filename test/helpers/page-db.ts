import type { Page } from "playwright-core";

export interface PageDbOptions {
  topic: string;
  peers: Array<{ host: string; port: number }>;
  storageName?: string;
  serverSelection?: false | { links?: number; refreshInterval?: number; maxRetries?: number; cache?: boolean };
}

/**
 * Starts `window.db`, a ToolDb from the browser bundle, in the page, with
 * fast reconnects (as FAST in nodes.ts) and `window.refusals` recording the
 * reasons of its `refused` events.
 */
export async function startPageDb(page: Page, options: PageDbOptions): Promise<void> {
  await page.evaluate(async (o) => {
    const w = window as any;
    const db = new w.tooldb.ToolDb({ ...o, wait: 50, maxReconnectDelay: 400, random: () => 0, handshakeTimeout: 2000 });
    w.db = db;
    w.refusals = [];
    db.on("refused", (e: { reason: string }) => w.refusals.push(e.reason));
    await db.ready;
  }, options);
}

/** Node addresses of the servers the page's db is linked to now. */
export function pageServerLinks(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as any).db.network.peers.filter((p: any) => p.isServer).map((p: any) => p.address));
}

/** Waits (in the page, without sleeping) until the page's db is linked to exactly these servers. */
export async function waitForPageLinks(page: Page, addresses: string[], timeout = 10_000): Promise<void> {
  await page.waitForFunction(
    (want) => {
      const have = (window as any).db.network.peers.filter((p: any) => p.isServer).map((p: any) => p.address);
      return have.length === want.length && want.every((a: string) => have.includes(a));
    },
    addresses,
    { timeout, polling: 20 },
  );
}
