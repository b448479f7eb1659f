import type { Browser, Page } from "playwright-core";
import { openPage } from "./chromium.js";

/**
 * Chromium hides host candidates behind mDNS names, skips loopback, and
 * without a media permission gathers only on the default route's interface
 * (none in a loopback-only namespace). These flags plus a granted fake
 * microphone (see rtcPage) give 127.0.0.1 host candidates.
 */
export const WEBRTC_LOOPBACK_ARGS = [
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--allow-loopback-in-peer-connection",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
];

/** A page in its own context, allowed to enumerate every interface (a granted, immediately stopped fake microphone). */
export async function rtcPage(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext();
  await context.grantPermissions(["microphone"]);
  const { page } = await openPage(browser, url, context);
  await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) track.stop();
  });
  return page;
}

/**
 * Starts `window.db` in the page on WebRTC only (no server list, no
 * WebSocket); `window.linkedAfter` is set to the ms from its first announce
 * to the first verified link. `rtc`: more WebRtcNetwork options.
 */
export async function startRtcPage(page: Page, topic: string, tracker: string, rtc: Record<string, unknown> = {}): Promise<void> {
  await page.evaluate(
    async ({ topic, tracker, rtc }) => {
      const w = window as any;
      const { ToolDb, WebRtcNetwork } = w.tooldb;
      let t0 = 0;
      // Timed from the first announce (the network starting), not from key and IndexedDB set-up.
      const networkAdapter = class extends WebRtcNetwork.with({ trackers: [tracker], announceInterval: 300, connectTimeout: 4000, ...rtc }) {
        listen() {
          t0 = performance.now();
          return super.listen();
        }
      };
      const db = new ToolDb({ topic, networkAdapter, serverSelection: false, wait: 50, maxReconnectDelay: 400, random: () => 0, handshakeTimeout: 2000 });
      db.once("peer-connect", () => (w.linkedAfter = performance.now() - t0));
      w.db = db;
      w.updates = [];
      await db.ready;
    },
    { topic, tracker, rtc },
  );
}
