import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { DHTServer, type DhtNodeOptions } from "../../src/entries/discovery.js";
import { EcdsaUser, ToolDb, signPeerRecord, type PeerRecord } from "../../src/index.js";
import { launchChromium, openPage, servePages, type PageServer } from "../helpers/chromium.js";
import { createDhtTestnet, type DhtTestnet } from "../helpers/dht-testnet.js";
import { FAST, closeAll, portOf, waitUntil } from "../helpers/nodes.js";
import { startPageDb, waitForPageLinks } from "../helpers/page-db.js";

const TOPIC = "browser-mesh";

function fast(testnet: DhtTestnet): DhtNodeOptions {
  return {
    bootstrap: testnet.bootstrap,
    discovery: { fastInterval: 100, slowInterval: 2000, jitter: 0, timeout: 500 },
    db: { ...FAST, handshakeTimeout: 1000 },
    penaltyMs: 60_000,
  };
}

const endpoint = (s: DHTServer) => ({ host: s.host, port: s.port });
const serverLinks = (db: ToolDb) => db.network.peers.filter((p) => p.isServer).map((p) => p.address);

describe("browsers in the DHT-discovered mesh (real Chromium, loopback)", () => {
  let testnet: DhtTestnet;
  let browser: Browser;
  let pages: PageServer;
  const servers: DHTServer[] = [];
  const nodes: ToolDb[] = [];

  async function startDhtServer(host: string): Promise<DHTServer> {
    const server = new DHTServer(TOPIC, host, 0, fast(testnet));
    servers.push(server);
    await server.start();
    return server;
  }

  async function nodeClient(server: DHTServer): Promise<ToolDb> {
    const db = new ToolDb({ topic: TOPIC, ...FAST, peers: [endpoint(server)] });
    nodes.push(db);
    await db.ready;
    await waitUntil(() => db.network.peers.length === 1, 5000, "node client link");
    return db;
  }

  async function newPage(): Promise<Page> {
    return (await openPage(browser, pages.url)).page;
  }

  before(async () => {
    testnet = await createDhtTestnet(3);
    for (const host of ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) await startDhtServer(host);
    await waitUntil(() => servers.every((s) => serverLinks(s.db).length === 2), 10_000, "full server mesh by DHT discovery");
    pages = await servePages();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    await closeAll(...nodes);
    await Promise.all(servers.map((s) => s.stop()));
    await testnet?.destroy();
  });

  it("a page puts, a Node client on another server gets it, and the reverse; subscriptions deliver every update", async () => {
    const [s1, , s3] = servers as [DHTServer, DHTServer, DHTServer];
    const node = await nodeClient(s3);
    const page = await newPage();
    await startPageDb(page, { topic: TOPIC, peers: [endpoint(s1)], serverSelection: { links: 1 }, storageName: "puts" });
    await waitForPageLinks(page, [s1.db.nodeAddress()]);

    const fromPage: unknown[] = [];
    node.addKeyListener("from-page", (r) => fromPage.push(r.v));
    await node.subscribeData("from-page");
    await page.evaluate(async () => {
      const w = window as any;
      w.fromNode = [];
      w.db.addKeyListener("from-node", (r: { v: unknown }) => w.fromNode.push(r.v));
      await w.db.subscribeData("from-node");
    });
    // Warm-up: the subscriptions are in place once a first value arrives both ways.
    await waitUntil(async () => {
      await page.evaluate(() => (window as any).db.putData("from-page", "warm-up"));
      await node.putData("from-node", "warm-up");
      return fromPage.includes("warm-up") && (await page.evaluate(() => (window as any).fromNode.includes("warm-up")));
    }, 10_000, "first value both ways");

    // Each update is put once the one before it reached the other side. With several in flight, two
    // can reach the far server by different paths of the mesh (a graft moves the broadcast tree) in
    // the other order; the older then rightly loses there (last writer wins) and fires no event
    // (the likely cause of a timeout seen once under a full suite's load).
    const N = 20;
    const updates = (values: unknown[]) => values.filter((v) => v !== "warm-up");
    for (let i = 1; i <= N; i++) {
      await page.evaluate((v) => (window as any).db.putData("from-page", v), i);
      await waitUntil(() => updates(fromPage).length >= i, 10_000, `page update ${i} at the Node subscriber`);
    }
    for (let i = 1; i <= N; i++) {
      await node.putData("from-node", i);
      await page.waitForFunction((n) => (window as any).fromNode.filter((v: unknown) => v !== "warm-up").length >= n, i, { timeout: 10_000, polling: 20 });
    }
    const expected = Array.from({ length: N }, (_, i) => i + 1);
    // Late warm-up copies may still arrive; every numbered update must, in order.
    assert.deepEqual(updates(fromPage), expected);
    assert.deepEqual(updates(await page.evaluate(() => (window as any).fromNode)), expected);
    assert.equal(await node.getData("from-page"), N);
    await page.context().close();
  });

  it("a wrong-topic and a forged server record gossiped to the page: the list is refused at the first, its sender struck, neither dialed", async () => {
    const outsider = new EcdsaUser();
    await outsider.ready;
    const now = Date.now();
    const wrongTopic = await signPeerRecord(outsider, "another-topic", "127.0.0.9", 9001, now, "ws://127.0.0.9:9001");
    const signed = await signPeerRecord(outsider, TOPIC, "127.0.0.9", 9002, now, "ws://127.0.0.9:9002");
    const forged: PeerRecord = { ...signed, url: "ws://127.0.0.10:9002" };
    // A real server of the topic whose pongs also list the bad records.
    class GossipingServer extends ToolDb {
      override knownServers(): PeerRecord[] {
        return [...super.knownServers(), wrongTopic, forged];
      }
    }
    const liar = new GossipingServer({ server: true, host: "127.0.0.8", port: 0, topic: TOPIC, ...FAST });
    nodes.push(liar);
    await liar.ready;
    const page = await newPage();
    await startPageDb(page, { topic: TOPIC, peers: [{ host: "127.0.0.8", port: portOf(liar) }], serverSelection: { links: 2 }, storageName: "forged" });
    // The first bad record ends the list (the rest is not checked) and strikes the server that listed it.
    await page.waitForFunction(() => (window as any).refusals.some((r: string) => r.startsWith("forged server record")), undefined, { timeout: 10_000, polling: 20 });
    const { refusals, known } = await page.evaluate(() => {
      const w = window as any;
      return { refusals: w.refusals as string[], known: w.tooldb.ServerSelection.of(w.db).list().map((s: { url: string }) => s.url) as string[] };
    });
    assert.ok(refusals.includes("forged server record in a server list (topic)"), refusals.join("; "));
    assert.deepEqual(known.filter((url) => url.includes("127.0.0.9") || url.includes("127.0.0.10")), []);
    await page.context().close();
  });

  it("reload with every server down: stored keys read, offline writes reach the server once it is back", async () => {
    let server = new ToolDb({ server: true, host: "127.0.0.6", port: 0, topic: TOPIC, ...FAST });
    await server.ready;
    const port = portOf(server);
    const page = await newPage();
    const options = { topic: TOPIC, peers: [{ host: "127.0.0.6", port }], serverSelection: false as const, storageName: "offline" };
    await startPageDb(page, options);
    await page.waitForFunction(() => (window as any).db.network.peers.length === 1, undefined, { timeout: 10_000, polling: 20 });
    await page.evaluate(() => (window as any).db.putData("written-online", "before the outage"));
    await waitUntil(async () => (await server.getData("written-online")) === "before the outage", 5000, "online write at the server");

    await server.close();
    await page.reload();
    await page.waitForFunction(() => "tooldb" in window);
    await startPageDb(page, options);
    const offline = await page.evaluate(async () => {
      const db = (window as any).db;
      const read = await db.getData("written-online");
      await db.putData("written-offline", "while every server was down");
      return { read, peers: db.network.peers.length };
    });
    assert.deepEqual(offline, { read: "before the outage", peers: 0 });

    server = new ToolDb({ server: true, host: "127.0.0.6", port, topic: TOPIC, ...FAST });
    nodes.push(server);
    await server.ready;
    await waitUntil(async () => (await server.getData("written-offline")) === "while every server was down", 10_000, "offline write handed on after the server came back");
    await page.context().close();
  });

  it("a page that knows one server learns the others from gossip, fails over without reload, picks up a new server, and next visit starts from its peer cache", async () => {
    const [s1, s2, s3] = servers as [DHTServer, DHTServer, DHTServer];
    const node = await nodeClient(s3);
    const page = await newPage();
    await startPageDb(page, { topic: TOPIC, peers: [endpoint(s1)], serverSelection: { links: 2, refreshInterval: 100 }, storageName: "failover" });
    await page.waitForFunction(
      () => (window as any).db.network.peers.filter((p: any) => p.isServer).length === 2 && (window as any).tooldb.ServerSelection.of((window as any).db).list().length >= 3,
      undefined,
      { timeout: 10_000, polling: 20 },
    );
    const sources = await page.evaluate(() => (window as any).tooldb.ServerSelection.of((window as any).db).list().map((s: { source: string }) => s.source));
    assert.ok(sources.includes("gossip"), sources.join(","));

    // Its bootstrap server dies: the page keeps two links through servers it learned.
    await s1.stop();
    await waitForPageLinks(page, [s2.db.nodeAddress(), s3.db.nodeAddress()]);
    const got: unknown[] = [];
    node.addKeyListener("after-failover", (r) => got.push(r.v));
    await node.subscribeData("after-failover");
    await waitUntil(async () => {
      await page.evaluate(() => (window as any).db.putData("after-failover", "still here"));
      return got.includes("still here");
    }, 10_000, "a put after failover");

    // A server that joins later (found by the others on the DHT) is learned without reload and used when another dies.
    const s4 = await startDhtServer("127.0.0.5");
    await page.waitForFunction(
      (address) => (window as any).tooldb.ServerSelection.of((window as any).db).list().some((s: { address?: string }) => s.address === address),
      s4.db.nodeAddress(),
      { timeout: 10_000, polling: 20 },
    );
    await s2.stop();
    await waitForPageLinks(page, [s3.db.nodeAddress(), s4.db.nodeAddress()]);

    // Next visit: no bootstrap list at all; the peer cache in IndexedDB has the known-good servers.
    await page.evaluate(() => (window as any).db.close());
    await page.reload();
    await page.waitForFunction(() => "tooldb" in window);
    await startPageDb(page, { topic: TOPIC, peers: [], serverSelection: { links: 2 }, storageName: "failover" });
    await waitForPageLinks(page, [s3.db.nodeAddress(), s4.db.nodeAddress()]);
    const cached = await page.evaluate(() => (window as any).tooldb.ServerSelection.of((window as any).db).list().filter((s: { source: string }) => s.source === "cache").length);
    assert.ok(cached >= 2);
    await page.context().close();
  });
});
