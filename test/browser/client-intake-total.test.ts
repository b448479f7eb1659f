/**
 * A page flooded by several of its servers at once. A page's WebSocket (and
 * a WebRTC data channel) cannot be paused, so what a link delivers while the
 * page is busy waits in that link's queue. The page is kept busy as an app
 * keeps it busy: its own check of the flooded key (addCustomVerification)
 * answers only when the test lets it.
 *
 * - Each link's queue was bounded (8,192 frames, 32 MiB) and nothing bounded
 *   them together: six hostile servers each sending a burst just under a
 *   link's bound made the page hold six of them (161 MiB). Now all links'
 *   queues have a bound (network/client-intake.ts, 48 MiB), past which the
 *   link holding the most lets go of the records it holds waiting, which are
 *   asked for again (network/client-shedding.ts); the honest link, which
 *   holds less, keeps everything. (Sybil links each holding less than the
 *   honest link: client-intake-sybil.test.ts.)
 * - A link letting go of its records kept the ones already taken in and
 *   waiting for their merge (256 small puts): each went through the app's
 *   check first, and the link's newest record waited behind them. Now they
 *   go too.
 * - A link whose queue filled by length with frames that are not records
 *   (answers) made the page's intake and its shedding call each other until
 *   the stack overflowed, at every further frame. Now the link is dropped.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import type { CDPSession } from "playwright-core";
import { randomId } from "../../src/base/random.js";
import { DEFAULT_CLIENT_INTAKE } from "../../src/network/client-intake.js";
import { signRecord } from "../../src/node/record-signer.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import { waitUntil } from "../helpers/nodes.js";
import { answerProbe, fileHostilePageRig, pageGlobal, pageStored } from "../helpers/hostile-page-rig.js";
import { testAuthor } from "../helpers/signed-records.js";

const TOPIC = "page-intake-total";
const KEY = "total/feed";
/** Hostile servers the page links to, beside one honest server. */
const HOSTILE = 6;
/** Records in each hostile burst, of PAD characters each: 960 x 30 KB, 27.7 MiB, under a link's bound of 32 MiB and 8,192 frames. */
const BURST = 960;
const PAD = 30_000;
/** Small updates (300 B) one hostile server floods, past a link's bound of 8,192 frames. */
const SMALL_FLOOD = 12_000;
/** Small puts a link has in flight at most: 32 slots of 8. */
const INFLIGHT = 256;
/** Honest updates waiting at the page when the bursts come (more than a link's 256 small puts in flight: some wait in its queue). */
const HONEST_UPDATES = 300;
/**
 * How much more the page's renderer process holds (resident, after a
 * garbage collection) once every burst is in than before them (MiB): the
 * total bound (48 MiB), what is in flight (32 slots a link, 1 MiB each) and
 * the rest. Frames from a WebSocket are strings outside V8's heap, so the
 * heap alone does not show them (it grew 6.5 MiB either way).
 */
const HELD_BOUND_MIB = 90;

async function collectGarbage(cdp: CDPSession): Promise<void> {
  await cdp.send("HeapProfiler.collectGarbage");
}

/** Resident memory of the browser's renderer processes (MiB): now, and the most they ever held. */
async function rendererMemory(browserCdp: CDPSession): Promise<{ rss: number; peak: number }> {
  const { processInfo } = (await browserCdp.send("SystemInfo.getProcessInfo")) as { processInfo: Array<{ type: string; id: number }> };
  const kib = (status: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  let rss = 0;
  let peak = 0;
  for (const p of processInfo) {
    if (p.type !== "renderer") continue;
    const status = await readFile(`/proc/${p.id}/status`, "utf8");
    rss += kib(status, "VmRSS");
    peak += kib(status, "VmHWM");
  }
  return { rss: rss / 1024, peak: peak / 1024 };
}

describe("a page flooded by several of its servers at once", () => {
  const rig = fileHostilePageRig(TOPIC, Array.from({ length: HOSTILE }, (_, i) => `127.0.0.${11 + i}`));
  const hostiles = rig.hostiles;

  /**
   * A page linked to every hostile server and the honest one, subscribed to
   * `key`, whose app checks `key` only once `release` is called (`checks`
   * counts them). Hostile server n answers a get of `key` with `answers[n]`.
   */
  async function gatedPage(key: string, answers: ToolDbRecord[]) {
    const seen = hostiles.map(() => ({ subscribes: 0, gets: 0 }));
    hostiles.forEach((hostile, n) => {
      hostile.onFrame = (link, f) => {
        if (answerProbe(link, f)) return;
        if (f.type === "subscribe") seen[n]!.subscribes++;
        if (f.type === "get" && f.key === key) {
          seen[n]!.gets++;
          if (answers[n]) link.send({ type: "put", id: f.id, to: [], data: answers[n] });
        }
      };
    });
    const { page, errors, links } = await rig.openLinkedPage({
      serverSelection: false,
      // Counts the frames that reach the page (before the database sees them), and how much waited in its intake as each came.
      beforeStart: (page) =>
        page.evaluate(() => {
          const w = window as any;
          w.floodIn = 0;
          w.honestIn = 0;
          w.bigIn = 0;
          w.maxQueued = 0;
          const Native = WebSocket;
          w.WebSocket = class extends Native {
            constructor(...args: ConstructorParameters<typeof WebSocket>) {
              super(...args);
              this.addEventListener("message", (e: MessageEvent) => {
                if (typeof e.data !== "string") return;
                w.maxQueued = Math.max(w.maxQueued, w.db?.network.guard.intake.queuedBytes ?? 0);
                if (e.data.includes('"flood":')) w.floodIn++;
                else if (e.data.includes('"honest-')) w.honestIn++;
                else if (e.data.length > 500_000) w.bigIn++;
              });
            }
          };
        }),
    });
    await page.evaluate(async (key) => {
      const w = window as any;
      w.refused = [];
      w.answers = new Set();
      w.checks = 0;
      w.db.on("refused", (e: { code: string; peer?: string; reason: string }) => w.refused.push(e));
      w.db.on("verified", (m: { data: { v?: { answer?: number } } }) => typeof m.data.v?.answer === "number" && w.answers.add(m.data.v.answer));
      // The app's own check of the key: it answers once the test says so.
      const gate = new Promise((resolve) => (w.release = () => resolve(true)));
      w.db.addCustomVerification(key, () => (w.checks++, gate));
      await w.db.subscribeData(key);
    }, key);
    await waitUntil(() => seen.every((s) => s.subscribes === 1) && hostiles.every((h) => h.links.size === 1) && rig.honestHoldsSubscription(key), 10_000, "every server holds the subscription");
    const value = <T>(name: string) => pageGlobal<T>(page, name);
    return {
      page,
      errors,
      seen,
      links,
      value,
      answered: () => page.evaluate(() => (window as any).answers.size as number),
      release: () => page.evaluate(() => (window as any).release()),
      stored: () => pageStored(page, key),
      memoryLimits: async () => (await value<Array<{ code: string; peer?: string }>>("refused")).filter((e) => e.code === "MEMORY_LIMIT").map((e) => e.peer),
      /** What the page holds, for a failure's message. */
      state: () =>
        page.evaluate(() => {
          const w = window as any;
          const intake = w.db.network.guard.intake;
          return { checks: w.checks, answers: [...w.answers], refused: w.refused.map((e: any) => `${e.code} ${e.peer}: ${e.reason}`), queued: intake.queuedFrames, inFlight: intake.inFlight, links: w.db.network.peers.length };
        }),
    };
  }

  it(`holds at most ${DEFAULT_CLIENT_INTAKE.maxTotalQueuedBytes / 2 ** 20} MiB waiting from ${HOSTILE} hostile servers' bursts of ${BURST} x 30 KB valid updates; the links holding the most let go, the honest link keeps everything; the page ends with the honest newest record`, { timeout: 240_000 }, async () => {
    const author = await testAuthor();
    const base = Date.now() - 600_000;
    const burst = await Promise.all(Array.from({ length: BURST }, (_, i) => signRecord(author, KEY, { flood: i, pad: "y".repeat(PAD) }, base + i, 0, false)));
    // What each hostile server answers when the page asks again for the key: newer than its burst, older than the honest record.
    const answers = await Promise.all(hostiles.map((_, n) => signRecord(author, KEY, { answer: n }, base + BURST + n, 0, false)));
    const p = await gatedPage(KEY, answers);
    const cdp = await p.page.context().newCDPSession(p.page);
    const browserCdp = await rig.browser.newBrowserCDPSession();
    const honestId = rig.honest.network.getClientAddress().slice(-20);

    // The honest server's updates come first: the page holds them (its check waits), some in the honest link's queue.
    for (let i = 0; i < HONEST_UPDATES; i++) await rig.writer.putData(KEY, `honest-${i}`);
    await p.page.waitForFunction((n) => (window as any).honestIn === n, HONEST_UPDATES, { timeout: 30_000, polling: 50 });
    await collectGarbage(cdp);
    const memory0 = await rendererMemory(browserCdp);

    const t0 = Date.now();
    // Each server's frames differ (their ids): Chromium keeps identical frames' strings once, not once each.
    for (const hostile of hostiles) for (const r of burst) [...hostile.links][0]!.send({ type: "put", id: randomId(), to: [], data: r });
    await p.page.waitForFunction((n) => (window as any).floodIn === n, HOSTILE * BURST, { timeout: 120_000, polling: 100 });
    const inMs = Date.now() - t0;
    await collectGarbage(cdp);
    const memoryThen = await rendererMemory(browserCdp);
    const maxQueued = await p.value<number>("maxQueued");
    const shedPeers = new Set(await p.memoryLimits());

    // The honest newest record, then the app's checks answer: the page takes in what it kept, and asks again for what it let go.
    await rig.writer.putData(KEY, "honest");
    await p.release();
    await waitUntil(async () => (await p.stored())?.v === "honest" && (await p.answered()) >= shedPeers.size, 120_000, "the honest record, and the answers to the page's asking again").catch(async (err: unknown) => {
      throw new Error(`${String(err)}: stored ${JSON.stringify((await p.stored())?.v)?.slice(0, 40)}, gets ${JSON.stringify(p.seen)}, shed ${[...shedPeers].join(",")}, honest ${honestId}, ${JSON.stringify(await p.state())}`);
    });
    const refused = await p.value<Array<{ code: string; peer?: string }>>("refused");
    const links = await p.page.evaluate(() => (window as any).db.network.peers.filter((s: any) => s.isServer).length as number);
    const asked = p.seen.filter((s) => s.gets > 0).length;
    const held = memoryThen.rss - memory0.rss;
    console.log(
      `page, ${HOSTILE} bursts of ${BURST} x ${PAD} B: all in after ${inMs} ms; at most ${(maxQueued / 2 ** 20).toFixed(1)} MiB waiting; renderer ${memory0.rss.toFixed(0)} MiB before, +${held.toFixed(0)} MiB then (peak +${(memoryThen.peak - memory0.rss).toFixed(0)}); ` +
        `links that let go of their records ${shedPeers.size}, asked again ${asked}; refusals ${refused.map((e) => e.code).join(",") || "none"}`,
    );
    await p.page.context().close();

    assert.ok(maxQueued <= DEFAULT_CLIENT_INTAKE.maxTotalQueuedBytes, `at most the total bound waited (${(maxQueued / 2 ** 20).toFixed(1)} MiB)`);
    assert.ok(held < HELD_BOUND_MIB, `the renderer holds ${held.toFixed(0)} MiB more (bound ${HELD_BOUND_MIB})`);
    assert.equal(refused.filter((e) => e.peer === honestId).length, 0, "the honest link let go of nothing");
    assert.ok(shedPeers.size >= 1 && !shedPeers.has(honestId), "hostile links let go of their records");
    assert.equal(links, p.links, "every link kept: records were let go, no link dropped");
    assert.ok(asked >= shedPeers.size, "each link that let go was asked again");
  });

  it(`a link letting go of its records lets go of those waiting for their merge too: the app checks a handful of them, not the ${INFLIGHT} the link had in flight; the newest is asked again and arrives`, { timeout: 240_000 }, async () => {
    const key = "total/slow";
    const author = await testAuthor();
    const base = Date.now() - 600_000;
    const flood = await Promise.all(Array.from({ length: SMALL_FLOOD }, (_, i) => signRecord(author, key, { flood: i, pad: "y".repeat(200) }, base + i, 0, false)));
    const newest = flood[flood.length - 1]!;
    // Hostile server 0 floods; asked again, it answers with the newest of its flood (let go with the rest).
    const p = await gatedPage(key, hostiles.map(() => newest));
    const [link] = [...hostiles[0]!.links];
    for (const r of flood) link!.send({ type: "put", id: randomId(), to: [], data: r });
    // At least: the answers to the page's asking again carry a record of the flood too, and may come before its last.
    await p.page.waitForFunction((n) => (window as any).floodIn >= n, SMALL_FLOOD, { timeout: 120_000, polling: 100 });
    const shed = await p.memoryLimits();
    const checksHeld = await p.value<number>("checks");
    const t0 = Date.now();
    await p.release();
    await waitUntil(async () => (await p.stored())?.h === newest.h, 120_000, "the newest record at the page").catch(async (err: unknown) => {
      throw new Error(`${String(err)}: gets ${JSON.stringify(p.seen)}, ${JSON.stringify(await p.state())}`);
    });
    const newestMs = Date.now() - t0;
    const checks = await p.value<number>("checks");
    console.log(`page, flood of ${SMALL_FLOOD} small updates while its check waits: links that let go ${shed.length}; ${checksHeld} checks waiting, ${checks} in all; the newest ${newestMs} ms after the checks answered (gets at the flooding server: ${p.seen[0]!.gets})`);
    await p.page.context().close();

    assert.deepEqual(shed, [hostiles[0]!.id.clientId], "the flooding link let go of its records");
    assert.ok(checks <= 8, `the app checked ${checks} records of the flood (the link had ${INFLIGHT} in flight)`);
    assert.ok(p.seen[0]!.gets >= 1, "asked again");
  });

  it("a server that fills its link's queue with large frames that are not records is dropped, and the page goes on (before: the page recursed until its stack overflowed, at every further frame)", { timeout: 120_000 }, async () => {
    const key = "total/answers";
    const author = await testAuthor();
    const base = Date.now() - 600_000;
    const puts = await Promise.all(Array.from({ length: 300 }, (_, i) => signRecord(author, key, { flood: i }, base + i, 0, false)));
    const p = await gatedPage(key, []);
    const [link] = [...hostiles[0]!.links];
    // Small puts fill the link's work in flight (the app's check waits); what follows waits in its queue.
    for (const r of puts) link!.send({ type: "put", id: randomId(), to: [], data: r });
    await p.page.waitForFunction(() => (window as any).floodIn === 300, undefined, { timeout: 30_000, polling: 50 });
    // Then 40 answers of 1 MB to nothing the page asked: 32 MiB of frames that are not records.
    const big = JSON.stringify({ type: "functionReturn", id: randomId(), to: [], code: "OK", return: "b".repeat(1_000_000) });
    for (let i = 0; i < 40; i++) link!.send(big);
    // All of them in, or the link dropped (the rest then never comes).
    await p.page.waitForFunction(() => (window as any).bigIn === 40 || (window as any).refused.some((e: { reason: string }) => e.reason.endsWith("link dropped")), undefined, { timeout: 60_000, polling: 50 });
    const refused = await p.value<Array<{ code: string; peer?: string; reason: string }>>("refused");
    const errors = [...p.errors];
    await p.release();
    await p.page.context().close();
    console.log(`page, a link's queue filled with 1 MB answers: page errors ${errors.length ? errors[0]!.slice(0, 80) : "none"}; refusals ${refused.map((e) => e.reason.slice(-40)).join(" | ")}`);
    assert.deepEqual(errors, [], "no error in the page");
    assert.ok(refused.some((e) => e.code === "MEMORY_LIMIT" && e.peer === hostiles[0]!.id.clientId && e.reason.endsWith("not records: link dropped")), "the link was dropped");
  });
});
