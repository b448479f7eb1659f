/**
 * WebRTC slots against Sybils (outside check "D5"): 10 Node peers with fresh
 * keys link to a Chromium page first, fill all 8 of its data-channel slots,
 * push it unsolicited (validly signed) junk and deliver nothing it asks for
 * (they store and answer nothing, so they cannot relay the honest page's record either).
 * An honest page that joins the tracker swarm later must link to it within a
 * bounded time and its record must reach the page. Before slot rotation the
 * page refused every later offer at its cap and never announced again: the
 * honest page never linked. Checked on the victim: who it links to, what it
 * read, that it never held more than its cap, and that it replaced at most
 * one link per rotation interval.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { ToolDb, clientIdOf } from "../../src/index.js";
import { signRecord } from "../../src/node/record-signer.js";
import { randomId } from "../../src/base/random.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import { launchChromium, servePages, type PageServer } from "../helpers/chromium.js";
import { WEBRTC_LOOPBACK_ARGS, rtcPage, startRtcPage } from "../helpers/rtc-page.js";
import { FAST, closeAll, waitUntil } from "../helpers/nodes.js";
import { type LocalTracker, localTracker, rtcOn } from "../helpers/tracker.js";
import { testAuthor } from "../helpers/signed-records.js";

/** More Sybils than the page's 8 slots: they fill them at once, and some are always left to offer. */
const SYBILS = 10;
const SLOTS = 8;
/** The pages' rotation interval (ms): short, so the bound below is too. */
const ROTATE_MS = 1000;
/**
 * The bound on the honest page's link and read. Each rotation (of either
 * page) offers to 3 peers the tracker picks at random among the 11 others,
 * Sybils that are not linked answer too, and the first answer takes the
 * slot: the pages meet after a few rotations on average; 45 s leaves room
 * for many more on a loaded 2-core machine.
 */
const BOUND_MS = 45_000;

const pageAddress = (page: Page) => page.evaluate(() => (window as any).db.nodeAddress() as string);
const pagePeers = (page: Page) => page.evaluate(() => (window as any).db.network.peers.map((p: any) => p.address) as string[]);

describe("WebRTC slots rotate on merit: Sybils that link first do not keep a page's slots", () => {
  let browser: Browser;
  let pages: PageServer;
  let tracker: LocalTracker;
  const nodes: ToolDb[] = [];
  const timers: NodeJS.Timeout[] = [];

  before(async () => {
    tracker = await localTracker();
    pages = await servePages();
    browser = await launchChromium(WEBRTC_LOOPBACK_ARGS);
  });

  after(async () => {
    for (const t of timers) clearInterval(t);
    await browser?.close();
    await closeAll(...nodes);
    await pages?.close();
    await tracker?.close();
  });

  it(`${SYBILS} Sybils fill a page's ${SLOTS} slots first and push junk; an honest page that joins later links and its record reaches the page within ${BOUND_MS / 1000} s`, { timeout: 150_000 }, async (t) => {
    const topic = `rtc-sybil-slots-${process.pid}`;
    const a = await rtcPage(browser, pages.url);
    await startRtcPage(a, topic, tracker.url, { rotateInterval: ROTATE_MS });
    // The victim's own record of what happened: refusals (rotations among them) and the most links it held.
    await a.evaluate(() => {
      const w = window as any;
      w.t0 = performance.now();
      w.refusals = [];
      w.maxLinks = 0;
      w.db.on("refused", (e: any) => w.refusals.push(e));
      setInterval(() => (w.maxLinks = Math.max(w.maxLinks, w.db.network.rtcPeerCount)), 20);
    });
    await a.evaluate(() => (window as any).db.putData("mine", "the page's own value"));

    const sybils: ToolDb[] = [];
    for (let i = 0; i < SYBILS; i++) {
      const s = new ToolDb({ topic, ...FAST, networkAdapter: rtcOn(tracker, { maxPeers: 64 }) });
      // A modified ToolDb: it links (and answers heartbeats) but takes in, stores and answers nothing.
      s.handleMessage = () => undefined;
      nodes.push(s);
      sybils.push(s);
      await s.ready;
    }
    const addrA = await pageAddress(a);
    const sybilAddrs = new Set(sybils.map((s) => s.nodeAddress()));
    let held = 0;
    await waitUntil(async () => (held = (await pagePeers(a)).filter((p) => sybilAddrs.has(p)).length) >= SLOTS, 60_000, "the Sybils to hold every slot of page A").catch((err: Error) =>
      assert.fail(`${err.message}: ${held} of ${SLOTS} held`),
    );

    // Each Sybil pushes validly signed records A never asked for, 4 a second: traffic, but nothing asked.
    const author = await testAuthor();
    const junk: ToolDbRecord[] = await Promise.all(Array.from({ length: 200 }, (_, i) => signRecord(author, `sybil-junk-${i}`, { i }, Date.now() - 10_000 + i, 0, false)));
    let sent = 0;
    for (const s of sybils) {
      timers.push(
        setInterval(() => {
          const session = s.network.peers.find((p) => p.address === addrA);
          if (session) session.send({ type: "put", id: randomId(), to: [], data: junk[sent++ % junk.length]! } as never);
        }, 250),
      );
    }

    const b = await rtcPage(browser, pages.url);
    await startRtcPage(b, topic, tracker.url, { rotateInterval: ROTATE_MS });
    const addrB = await pageAddress(b);
    await b.evaluate(() => (window as any).db.putData("from-b", "hello from the honest page"));
    const t0 = Date.now();
    // A reads B's key until it arrives: a get goes to every linked peer, and only B holds the key.
    let read: unknown;
    while (read !== "hello from the honest page") {
      if (Date.now() - t0 > BOUND_MS) {
        const links = await pagePeers(a);
        assert.fail(`page A did not read the honest page's record within ${BOUND_MS / 1000} s; linked to B: ${links.includes(addrB)}, ${links.filter((p) => sybilAddrs.has(p)).length} Sybil links`);
      }
      read = await a.evaluate(() => (window as any).db.getData("from-b", false, 800));
    }
    const tookMs = Date.now() - t0;
    const peersA = await pagePeers(a);
    const seen = await a.evaluate(() => {
      const w = window as any;
      return { maxLinks: w.maxLinks as number, elapsed: performance.now() - w.t0, rotations: (w.refusals as any[]).filter((e) => /rotated out/.test(e.reason)).map((e) => e.peer as string) };
    });
    t.diagnostic(`honest page read after ${(tookMs / 1000).toFixed(1)} s; A's links then: ${peersA.length} (${peersA.filter((p) => sybilAddrs.has(p)).length} Sybils); ${seen.rotations.length} rotations in ${(seen.elapsed / 1000).toFixed(1)} s; ${sent} junk records pushed`);
    assert.ok(peersA.includes(addrB), "A links to the honest page B");
    assert.ok(seen.maxLinks <= SLOTS, `A held ${seen.maxLinks} data-channel peers, over its cap of ${SLOTS}`);
    assert.ok(seen.rotations.length <= Math.floor(seen.elapsed / ROTATE_MS) + 1, `${seen.rotations.length} rotations in ${seen.elapsed} ms: more than one per ${ROTATE_MS} ms`);
    assert.ok(!seen.rotations.includes(clientIdOf(addrB)), "A never rotated out the honest page");
    assert.equal(await a.evaluate(() => (window as any).db.getData("mine")), "the page's own value", "A's own data is intact");
    await a.context().close();
    await b.context().close();
  });
});
