import TrackerServer from "bittorrent-tracker/server";
import type { NetworkAdapterConstructor } from "../../src/network/network-adapter.js";
import { WebRtcNetwork, type WebRtcNetworkOptions } from "../../src/entries/webrtc.js";

/** A WebTorrent tracker (WebSocket only) on loopback. */
export interface LocalTracker {
  url: string;
  server: TrackerServer;
  /** Open TCP connections to the tracker (its WebSocket clients). */
  sockets(): Promise<number>;
  close(): Promise<void>;
}

export async function localTracker(): Promise<LocalTracker> {
  const server = new TrackerServer({ udp: false, http: false, ws: true, stats: false });
  server.on("warning", () => undefined); // bad announces (the forged-offer test) are the tracker's business
  server.on("error", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.http!.address();
  if (!address || typeof address === "string") throw new Error("tracker has no port");
  let closed: Promise<void> | undefined;
  return {
    url: `ws://127.0.0.1:${address.port}`,
    server,
    sockets: () => new Promise((resolve, reject) => server.http!.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}

/** Host candidates on loopback only, no STUN: what every WebRTC test in Node uses. */
export const LOOPBACK_RTC = { iceServers: [], bindAddress: "127.0.0.1" };

/** WebRtcNetwork on `tracker`, loopback candidates, quick re-announces. */
export function rtcOn(tracker: LocalTracker, options: Partial<WebRtcNetworkOptions> = {}): NetworkAdapterConstructor {
  return WebRtcNetwork.with({ trackers: [tracker.url], rtcConfig: LOOPBACK_RTC, announceInterval: 300, connectTimeout: 4000, ...options });
}
