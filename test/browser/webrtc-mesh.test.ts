/**
 * WebRtcNetwork in real Chromium: pages find each other through a local
 * WebTorrent tracker (loopback, no STUN, host candidates unhidden) and sync
 * with no ToolDb server; a Node peer joins the same mesh; a WebRTC-only page
 * gets a put from a WebSocket client of a DHT-discovered server that runs
 * both transports.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { DHTClient, DHTServer } from "../../src/entries/discovery.js";
import { ToolDb, clientIdOf } from "../../src/index.js";
import { WebSocketNetwork } from "../../src/network/websocket-network.js";
import { launchChromium, servePages, type PageServer } from "../helpers/chromium.js";
import { WEBRTC_LOOPBACK_ARGS, rtcPage, startRtcPage } from "../helpers/rtc-page.js";
import { createDhtTestnet } from "../helpers/dht-testnet.js";
import { FAST, closeAll, waitUntil } from "../helpers/nodes.js";
import { type LocalTracker, localTracker, rtcOn } from "../helpers/tracker.js";

const T = 20_000;
let topicSeq = 0;

const pagePeers = (page: Page) => page.evaluate(() => (window as any).db.network.peers.map((p: any) => [p.address, p.connection.info.transport]) as Array<[string, string]>);
const pageAddress = (page: Page) => page.evaluate(() => (window as any).db.nodeAddress() as string);
const waitInPage = (page: Page, fn: string) => page.waitForFunction(fn, undefined, { timeout: T, polling: 20 });
/**
 * Waits until the page's `getData(key)` resolves `value`. Not waitForFunction
 * with a promise-returning predicate: a promise is truthy, so that passed at
 * once and checked nothing.
 */
const waitForPageValue = (page: Page, key: string, value: unknown) =>
  waitUntil(async () => (await page.evaluate((k) => (window as any).db.getData(k, false, 500), key)) === value, T, `page reads ${key} = ${String(value)}`);

describe("WebRTC mesh in Chromium through a WebTorrent tracker", () => {
  let browser: Browser;
  let pages: PageServer;
  let tracker: LocalTracker;
  const nodes: ToolDb[] = [];

  before(async () => {
    tracker = await localTracker();
    pages = await servePages();
    browser = await launchChromium(WEBRTC_LOOPBACK_ARGS);
  });

  after(async () => {
    await browser?.close();
    await closeAll(...nodes);
    await pages?.close();
    await tracker?.close();
  });

  it("two pages find each other and sync a put then a subscription update, no server; a Node peer joins the mesh", { timeout: 60_000 }, async () => {
    const topic = `rtc-pages-${process.pid}-${topicSeq++}`;
    const a = await rtcPage(browser, pages.url);
    const b = await rtcPage(browser, pages.url);
    await startRtcPage(a, topic, tracker.url);
    await startRtcPage(b, topic, tracker.url);
    const [addrA, addrB] = [await pageAddress(a), await pageAddress(b)];
    await waitInPage(a, `window.db.network.peers.some((p) => p.address === ${JSON.stringify(addrB)})`);
    assert.deepEqual(await pagePeers(a), [[addrB, "webrtc"]]);

    await a.evaluate(() => (window as any).db.putData("greeting", "hello from page A"));
    await waitForPageValue(b, "greeting", "hello from page A");

    await b.evaluate(async () => {
      const w = window as any;
      w.db.addKeyListener("counter", (r: any) => w.updates.push(r.v));
      await w.db.subscribeData("counter");
    });
    await a.evaluate(async () => {
      await (window as any).db.putData("counter", 1);
      await (window as any).db.putData("counter", 2);
    });
    await waitInPage(b, "window.updates.includes(2)");

    // A Node peer joins over WebRTC and links to both pages.
    const node = new ToolDb({ topic, ...FAST, networkAdapter: rtcOn(tracker) });
    nodes.push(node);
    await node.ready;
    await waitUntil(() => node.network.isConnected(clientIdOf(addrA)) && node.network.isConnected(clientIdOf(addrB)), T, "Node peer linked to both pages");
    await node.putData("from-node", "hello pages");
    await waitForPageValue(a, "from-node", "hello pages");
    await waitForPageValue(b, "from-node", "hello pages");
    await b.evaluate(() => (window as any).db.putData("from-page", "hello node"));
    await waitUntil(async () => (await node.getData("from-page", false, 1000)) === "hello node", T, "page put at the Node peer");
  });

  it("a WebRTC-only page gets a put from a WebSocket client of a DHT-discovered server that runs both transports", { timeout: 60_000 }, async () => {
    const topic = `rtc-dht-${process.pid}-${topicSeq++}`;
    const testnet = await createDhtTestnet(3);
    const discovery = { fastInterval: 100, slowInterval: 2000, jitter: 0, timeout: 500 };
    const server = new DHTServer(topic, "127.0.0.2", 0, { bootstrap: testnet.bootstrap, discovery, db: { ...FAST, networkAdapter: [WebSocketNetwork, rtcOn(tracker)] } });
    const client = new DHTClient(topic, { bootstrap: testnet.bootstrap, discovery, dhtHost: "127.0.0.3", db: FAST });
    try {
      await server.start();
      await client.start();
      await waitUntil(() => client.db.network.peers.some((p) => p.address === server.db.nodeAddress()), T, "DHT client finds the server");
      assert.equal(client.db.network.session(server.db.network.getClientAddress())?.connection.info.transport, "websocket");

      const page = await rtcPage(browser, pages.url);
      await startRtcPage(page, topic, tracker.url);
      await waitInPage(page, `window.db.network.peers.some((p) => p.address === ${JSON.stringify(server.db.nodeAddress())})`);
      assert.deepEqual(await pagePeers(page), [[server.db.nodeAddress(), "webrtc"]]);
      await page.evaluate(async () => {
        const w = window as any;
        w.db.addKeyListener("news", (r: any) => w.updates.push(r.v));
        await w.db.subscribeData("news");
      });
      await waitUntil(() => server.db.network.peers.length === 2, T, "server sees both");
      await client.db.putData("news", "from a WebSocket client");
      await waitInPage(page, `window.updates.includes("from a WebSocket client")`);
    } finally {
      await Promise.all([client.stop(), server.stop()]);
      await testnet.destroy();
    }
  });
});
