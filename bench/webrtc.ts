/**
 * WebRTC figures, each beside its raw engine or the transport it replaces,
 * measured in the same run on a loopback WebTorrent tracker, no STUN:
 *
 *   1. Node ↔ Node: tracker announce → first verified ToolDb link over
 *      WebRtcNetwork (from the second node's network start, after its keys
 *      and store), against two raw bittorrent-tracker clients → first open
 *      data channel (same tracker, same RTC config, fresh info hash per run);
 *   2. browser ↔ browser (Chromium): a page's first announce → verified link
 *      to a page already announced, beside figure 1;
 *   3. relayed verified puts/s and p50/p99 writer → server → subscriber over
 *      WebRTC against WebSocket (same code; the two WebRTC clients announce
 *      different info hashes, both served by the server, so they cannot link
 *      to each other and every put is relayed).
 */
import { bytesToHex, randomBytes } from "@noble/hashes/utils.js";
import TrackerClient, { type TrackerPeer } from "bittorrent-tracker/client";
import { ToolDb, type ToolDbOptions } from "../src/index.js";
import { WebSocketNetwork } from "../src/network/websocket-network.js";
import type { NetworkHost } from "../src/network/network-host.js";
import { type WebRtcNetwork, trackerInfoHash } from "../src/entries/webrtc.js";
import { launchChromium, servePages } from "../test/helpers/chromium.js";
import { WEBRTC_LOOPBACK_ARGS, rtcPage, startRtcPage } from "../test/helpers/rtc-page.js";
import { LOOPBACK_RTC, type LocalTracker, localTracker, rtcOn } from "../test/helpers/tracker.js";
import { TRUSTED_WRITER } from "./presign.js";
import { type RelayFigures, relayedPuts } from "./relay-transport.js";
import { fmt, median } from "./stats.js";

export interface WebRtcFigures {
  rawNode: number[];
  linkNode: number[];
  linkBrowser: number[];
  relay: Record<"websocket" | "webrtc", RelayFigures>;
}

async function announced(tracker: LocalTracker, infoHash: string): Promise<void> {
  while (!(tracker.server.torrents[infoHash]?.peers.length ?? 0)) await new Promise((r) => setTimeout(r, 5));
}

/** Two bare tracker clients: the second one's start → its first open data channel. */
async function rawRun(tracker: LocalTracker, run: number): Promise<number> {
  const infoHash = bytesToHex(randomBytes(20));
  const make = (n: number) => {
    const client = new TrackerClient({ infoHash, peerId: bytesToHex(randomBytes(20)), announce: [`${tracker.url}?raw=${run}-${n}`], port: 1, rtcConfig: LOOPBACK_RTC });
    const peers: TrackerPeer[] = [];
    client.on("warning", () => undefined);
    client.on("peer", (p) => (peers.push(p), p.on("error", () => undefined)));
    return { client, peers };
  };
  const a = make(0);
  a.client.start();
  await announced(tracker, infoHash);
  const t0 = performance.now();
  const b = make(1);
  const connected = new Promise<void>((resolve) => b.client.on("peer", (p) => p.once("connect", () => resolve())));
  b.client.start();
  await connected;
  const ms = performance.now() - t0;
  for (const side of [a, b]) {
    for (const p of side.peers) p.destroy();
    await new Promise<void>((resolve) => side.client.destroy(() => resolve()));
  }
  return ms;
}

async function linkRun(tracker: LocalTracker, run: number): Promise<number> {
  const topic = `bench-rtc-${process.pid}-${run}`;
  const a = new ToolDb({ topic, networkAdapter: rtcOn(tracker) });
  await a.ready;
  await announced(tracker, trackerInfoHash(topic));
  // Timed from B's first announce (its network starting), not from its key and store set-up.
  let t0 = 0;
  const Rtc = rtcOn(tracker) as unknown as new (host: NetworkHost) => WebRtcNetwork;
  class Timed extends Rtc {
    protected override listen(): Promise<void> {
      t0 = performance.now();
      return super.listen();
    }
  }
  const b = new ToolDb({ topic, networkAdapter: Timed });
  await new Promise<void>((resolve) => b.once("peer-connect", () => resolve()));
  const ms = performance.now() - t0;
  await Promise.all([a.close(), b.close()]);
  return ms;
}

async function browserRuns(tracker: LocalTracker, runs: number, progress: (s: string) => void): Promise<number[]> {
  const pages = await servePages();
  const browser = await launchChromium(WEBRTC_LOOPBACK_ARGS);
  const out: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const topic = `bench-rtc-pages-${process.pid}-${i}`;
      const a = await rtcPage(browser, pages.url);
      await startRtcPage(a, topic, tracker.url);
      await announced(tracker, trackerInfoHash(topic));
      const b = await rtcPage(browser, pages.url);
      await startRtcPage(b, topic, tracker.url);
      await b.waitForFunction(() => (window as any).linkedAfter !== undefined, undefined, { timeout: 30_000, polling: 10 });
      out.push(await b.evaluate(() => (window as any).linkedAfter as number));
      for (const page of [a, b]) {
        await page.evaluate(() => (window as any).db.close());
        await page.context().close();
      }
      progress(`browser link ${i + 1}/${runs}`);
    }
  } finally {
    await browser.close();
    await pages.close();
  }
  return out;
}

function relayOver(transport: "websocket" | "webrtc", tracker: LocalTracker, total: number): Promise<RelayFigures> {
  const topic = `bench-relay-${transport}-${process.pid}`;
  const base: Partial<ToolDbOptions> = { topic, limits: TRUSTED_WRITER };
  const writerHash = trackerInfoHash(`${topic}/writer`);
  const subscriberHash = trackerInfoHash(`${topic}/subscriber`);
  return relayedPuts(
    async () => {
      const serverAdapter = transport === "websocket" ? WebSocketNetwork : [rtcOn(tracker, { infoHash: writerHash }), rtcOn(tracker, { infoHash: subscriberHash })];
      const server = new ToolDb({ ...base, server: true, host: "127.0.0.1", port: 0, networkAdapter: serverAdapter });
      await server.ready;
      if (transport === "websocket") {
        const peers = [{ host: "127.0.0.1", port: (server.network as WebSocketNetwork).port! }];
        return { server, writer: new ToolDb({ ...base, peers }), subscriber: new ToolDb({ ...base, peers }) };
      }
      return {
        server,
        writer: new ToolDb({ ...base, networkAdapter: rtcOn(tracker, { infoHash: writerHash }) }),
        subscriber: new ToolDb({ ...base, networkAdapter: rtcOn(tracker, { infoHash: subscriberHash }) }),
      };
    },
    total,
    `rtc-${transport}-`,
  );
}

export async function webrtcBenchmark(runs: number, puts: number, progress: (s: string) => void = () => undefined): Promise<WebRtcFigures> {
  const tracker = await localTracker();
  try {
    const rawNode: number[] = [];
    const linkNode: number[] = [];
    for (let i = 0; i < runs; i++) {
      rawNode.push(await rawRun(tracker, i));
      linkNode.push(await linkRun(tracker, i));
      progress(`node link ${i + 1}/${runs}`);
    }
    const linkBrowser = await browserRuns(tracker, runs, progress);
    const websocket = await relayOver("websocket", tracker, puts);
    progress("relay over websocket done");
    const webrtc = await relayOver("webrtc", tracker, puts);
    progress("relay over webrtc done");
    return { rawNode, linkNode, linkBrowser, relay: { websocket, webrtc } };
  } finally {
    await tracker.close();
  }
}

const range = (v: number[]) => `median ${fmt(median(v))} ms (min ${fmt(Math.min(...v))}, max ${fmt(Math.max(...v))})`;

export function printWebRtcFigures(f: WebRtcFigures, out: (line: string) => void): void {
  out(`raw bittorrent-tracker + simple-peer (node-datachannel), Node <-> Node: start -> open data channel: ${range(f.rawNode)}`);
  out(`WebRtcNetwork Node <-> Node: tracker announce -> verified ToolDb link: ${range(f.linkNode)}; ${fmt(median(f.linkNode) / median(f.rawNode), 2)} x raw`);
  out(`WebRtcNetwork Chromium page <-> page: tracker announce -> verified ToolDb link: ${range(f.linkBrowser)}; ${fmt(median(f.linkBrowser) / median(f.linkNode), 2)} x Node <-> Node`);
  const { websocket: ws, webrtc: rtc } = f.relay;
  out(`relayed verified puts over WebSocket: ${fmt(ws.putsPerSecond, 0)} /s, one at a time p50 ${fmt(ws.p50, 3)} ms, p99 ${fmt(ws.p99, 3)} ms`);
  out(`relayed verified puts over WebRTC: ${fmt(rtc.putsPerSecond, 0)} /s (${fmt(rtc.putsPerSecond / ws.putsPerSecond, 2)} x WebSocket), p50 ${fmt(rtc.p50, 3)} ms (${fmt(rtc.p50 / ws.p50, 2)} x), p99 ${fmt(rtc.p99, 3)} ms`);
}
