/**
 * A Chromium page as a writer beside a Node client, in the same run: both
 * put (sign + send) through one server (a child process) to one Node
 * subscriber. Figures: put -> subscriber latency one put at a time, and
 * the sustained put rate with up to WINDOW puts in flight.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { ToolDb } from "../src/index.js";
import { ChromiumUnavailable, launchChromium, openPage, resolveChromium, servePages } from "../test/helpers/chromium.js";
import { fmt, percentile } from "./stats.js";

const KEYS = 100;
const WINDOW = 200;
/** How long a writer's measurement may wait for its puts to reach the subscriber. */
const WAIT_MS = 120_000;

/** The number of the last put to key `k` among puts 0 .. end-1 (put n goes to key n % KEYS). */
const lastPutTo = (k: number, end: number) => end - 1 - ((end - 1 - k) % KEYS + KEYS) % KEYS;

export interface WriterFigures {
  p50: number;
  p99: number;
  putsPerSecond: number;
}

export interface BrowserFigures {
  node: WriterFigures;
  page: WriterFigures;
  latencySamples: number;
  burst: number;
}

/** Epoch ms with sub-ms resolution, comparable across processes on one machine. */
const epochNow = () => performance.timeOrigin + performance.now();

/** page clock - Node clock, from the round trip with the smallest delay. */
async function clockOffset(page: Page): Promise<number> {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < 30; i++) {
    const t0 = epochNow();
    const tp = await page.evaluate(() => performance.timeOrigin + performance.now());
    const t1 = epochNow();
    if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: tp - (t0 + t1) / 2 };
  }
  return best.offset;
}

type Put = (n: number, key: string) => Promise<unknown>;

/** Latency (one put at a time) and sustained rate of one writer, seen by the subscriber. */
async function measureWriter(subscriber: ToolDb, prefix: string, put: Put, putBurst: (from: number, count: number) => Promise<void>, offset: number, samples: number, burst: number): Promise<WriterFigures> {
  const latencies: number[] = [];
  let received = 0;
  // The highest put number the subscriber saw on each key.
  const newest = new Int32Array(KEYS).fill(-1);
  let wake: (() => void) | undefined;
  for (let k = 0; k < KEYS; k++) {
    subscriber.addKeyListener(`${prefix}-${k}`, (r) => {
      const { sentAt, n } = r.v as { sentAt: number; n: number };
      latencies.push(epochNow() - (sentAt - offset));
      received++;
      newest[k] = Math.max(newest[k]!, n);
      wake?.();
    });
    await subscriber.subscribeData(`${prefix}-${k}`);
  }
  const deadline = Date.now() + WAIT_MS;
  const until = async (done: () => boolean, what: string) => {
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`browser bench (${prefix} writer): ${what} did not arrive within ${WAIT_MS / 1000} s`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(left, 1000));
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
  };
  // Warm-up until the subscriptions deliver.
  await put(0, `${prefix}-0`);
  await until(() => received >= 1, "the first put");
  for (let n = 1; n <= samples; n++) {
    await put(n, `${prefix}-${n % KEYS}`);
    await until(() => received >= n + 1, `put ${n}`);
  }
  const sorted = latencies.slice(1).sort((a, b) => a - b);
  const start = epochNow();
  await putBurst(samples + 1, burst);
  // Several puts to a key are in flight at once during the burst: one signed later may reach the
  // server first, and the one it overtook then loses (last writer wins) and is not relayed. The burst
  // is through when the subscriber holds each key's last put.
  const end = samples + 1 + burst;
  await until(() => newest.every((seen, k) => seen >= lastPutTo(k, end)), "the last put to every key");
  const seconds = (epochNow() - start) / 1000;
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), putsPerSecond: burst / seconds };
}

/** Why the browser figures were skipped (no usable Chromium), if they were. */
let skipped = "";

export async function browserBenchmark(samples = 500, burst = 5000): Promise<BrowserFigures | undefined> {
  try {
    await resolveChromium();
  } catch (err) {
    if (!(err instanceof ChromiumUnavailable)) throw err;
    skipped = err.message;
    return undefined;
  }
  const child = fork(fileURLToPath(new URL("./relay-server.js", import.meta.url)), { stdio: "inherit" });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once("message", (m: { port: number }) => resolve(m)));
  const peers = [{ host: "127.0.0.1", port }];
  const subscriber = new ToolDb({ topic: "bench", peers });
  const writer = new ToolDb({ topic: "bench", peers });
  const pages = await servePages();
  const browser = await launchChromium();
  try {
    await Promise.all([subscriber.ready, writer.ready]);
    await Promise.all([subscriber, writer].map((db) => (db.isConnected ? undefined : new Promise((r) => db.once("connect", () => r(undefined))))));
    const node = await measureWriter(
      subscriber,
      "node",
      (n, key) => writer.putData(key, { n, sentAt: epochNow() }),
      async (from, count) => {
        const inflight = new Set<Promise<unknown>>();
        for (let n = from; n < from + count; n++) {
          const p = writer.putData(`node-${n % KEYS}`, { n, sentAt: epochNow() }).finally(() => inflight.delete(p));
          inflight.add(p);
          if (inflight.size >= WINDOW) await Promise.race(inflight);
        }
      },
      0,
      samples,
      burst,
    );

    const { page } = await openPage(browser, pages.url);
    await page.evaluate(async (p) => {
      const w = window as any;
      w.db = new w.tooldb.ToolDb({ topic: "bench", peers: p, serverSelection: false, storageName: "bench" });
      await w.db.ready;
      if (!w.db.isConnected) await new Promise((r) => w.db.once("connect", r));
    }, peers);
    const offset = await clockOffset(page);
    const pageFigures = await measureWriter(
      subscriber,
      "page",
      (n, key) => page.evaluate(([n, key]) => (window as any).db.putData(key, { n, sentAt: performance.timeOrigin + performance.now() }), [n, key] as const),
      (from, count) =>
        page.evaluate(
          async ([from, count, keys, window_]) => {
            const db = (window as any).db;
            const inflight = new Set<Promise<unknown>>();
            for (let n = from; n < from + count; n++) {
              const p: Promise<unknown> = db.putData(`page-${n % keys}`, { n, sentAt: performance.timeOrigin + performance.now() }).finally(() => inflight.delete(p));
              inflight.add(p);
              if (inflight.size >= window_) await Promise.race(inflight);
            }
          },
          [from, count, KEYS, WINDOW] as const,
        ),
      offset,
      samples,
      burst,
    );
    return { node, page: pageFigures, latencySamples: samples, burst };
  } finally {
    await browser.close();
    await pages.close();
    await Promise.all([subscriber.close(), writer.close()]);
    child.send({ type: "stop" });
    await new Promise((r) => child.once("exit", r));
  }
}

export function printBrowserFigures(f: BrowserFigures | undefined, print: (line: string) => void): void {
  if (!f) {
    print(`skipped: ${skipped}`);
    return;
  }
  const row = (name: string, w: WriterFigures) =>
    `${name}: put -> Node subscriber p50 ${fmt(w.p50, 2)} ms, p99 ${fmt(w.p99, 2)} ms; sustained puts ${fmt(w.putsPerSecond, 0)} /s`;
  print(`(latency: ${f.latencySamples} puts one at a time; rate: ${f.burst.toLocaleString()} puts, up to ${WINDOW} in flight; putData signs each put)`);
  print(row("Node client writer ", f.node));
  print(row("Chromium page writer", f.page));
  print(`page / Node: latency p50 ${fmt(f.page.p50 / f.node.p50, 2)}×, put rate ${fmt(f.page.putsPerSecond / f.node.putsPerSecond, 2)}×`);
}
