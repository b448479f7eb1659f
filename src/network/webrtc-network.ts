/// <reference path="../../types/bittorrent-tracker.d.ts" preserve="true" />
import { sha1 } from "@noble/hashes/legacy.js";
import { bytesToHex, randomBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import TrackerClient, { type TrackerPeer } from "bittorrent-tracker/client";
import type { TimerHandle } from "../base/clock.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import type { Connection } from "./connection.js";
import { DataChannelConnection } from "./data-channel-connection.js";
import { type NetworkAdapterConstructor, ToolDbNetworkAdapter, notSupported, withOptions } from "./network-adapter.js";
import type { NetworkHost } from "./network-host.js";

/** The WebTorrent info hash a ToolDb topic is announced under: sha1(topic), 40 hex digits. */
export function trackerInfoHash(topic: string): string {
  return bytesToHex(sha1(utf8ToBytes(topic)));
}

export interface WebRtcNetworkOptions {
  /** WebTorrent (WebSocket) tracker URLs, `ws://` or `wss://`. Required: there is no default tracker. */
  trackers: string[];
  /**
   * RTCPeerConnection configuration. Default `{ iceServers: [] }`: host
   * candidates only (a LAN, or loopback in tests); pass STUN/TURN servers to
   * cross NATs. In Node, `bindAddress` (node-datachannel) picks the interface.
   * A configuration without `iceServers` gets `[]` too: simple-peer would
   * otherwise add public STUN servers of its own.
   */
  rtcConfig?: RTCConfiguration & { bindAddress?: string };
  /** Most data-channel peers at once, connected or connecting (default 8). Further offers are refused. */
  maxPeers?: number;
  /**
   * The topic is announced again after `announceInterval` ms (default 2000),
   * doubling up to `maxAnnounceInterval` (default 60000): failed or unanswered
   * offers back off. A lost link, or a pairing that failed before its data
   * channel opened (up to three in a row), announces again at once (at most
   * once per announceInterval).
   */
  announceInterval?: number;
  maxAnnounceInterval?: number;
  /** A connecting peer that has not opened its data channel after this many ms is dropped (default 10000). */
  connectTimeout?: number;
  /** The swarm's info hash (default `trackerInfoHash(topic)`); peers of another topic are refused at the handshake anyway. */
  infoHash?: string;
}

/** simple-peer error codes that mean the remote side sent a bad signal (forged or garbled offer/answer). */
const BAD_SIGNAL = new Set(["ERR_SIGNALING", "ERR_SET_REMOTE_DESCRIPTION", "ERR_ADD_ICE_CANDIDATE", "ERR_SDP_TYPE"]);
/**
 * libdatachannel (Node) sometimes rejects a well-formed answer when the CPU is
 * contended ("Got a remote candidate without ICE transport"): our side failed,
 * not the peer's signal.
 */
const LOCAL_RTC_RACE = /without ICE transport/;
/** Failed pairings in a row that each bring the next announce forward; later ones wait for the backoff. */
const PROMPT_RETRIES = 3;

/**
 * WebRTC transport: announces the topic's info hash on WebTorrent trackers
 * with offers, answers the offers the trackers relay, and runs every opened
 * data channel through DataChannelConnection under the shared handshake, so
 * identity checks, de-duplication with other transports, limits and refusals
 * are those of every other transport. Browsers use the native
 * RTCPeerConnection; Node uses node-datachannel (through simple-peer's
 * webrtc-polyfill). It cannot dial host:port.
 */
export class WebRtcNetwork extends ToolDbNetworkAdapter {
  private client: TrackerClient | undefined;
  private readonly rtcPeers = new Set<TrackerPeer>();
  /** Live peers by the remote end's tracker peer id: one pairing per remote tracker client. */
  private readonly byTrackerId = new Map<string, TrackerPeer>();
  private readonly peerId = bytesToHex(randomBytes(20));
  private readonly dropped = new WeakSet<TrackerPeer>();
  private readonly trackers: string[];
  private announceTimer: TimerHandle | undefined;
  private lastAnnounce = Number.NEGATIVE_INFINITY;
  /** Pairings that failed since a data channel last opened. */
  private failedPairings = 0;
  /** Peers of the topic each tracker counted in its last answer (ourselves included). */
  private readonly swarmSizes = new Map<string, number>();
  private clientClosed: Promise<void> | undefined;

  /** An adapter class bound to `options`, for `networkAdapter`. */
  static with(options: WebRtcNetworkOptions): NetworkAdapterConstructor {
    return withOptions(WebRtcNetwork, options);
  }

  constructor(
    host: NetworkHost,
    private readonly rtcOptions: WebRtcNetworkOptions = { trackers: [] },
  ) {
    super(host, "network:webrtc");
    const trackers = rtcOptions.trackers;
    if (!Array.isArray(trackers) || trackers.length === 0) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "WebRtcNetwork: give at least one tracker URL (trackers: ['wss://…'])");
    }
    for (const url of trackers) {
      if (typeof url !== "string" || !/^wss?:\/\/[^/]/.test(url)) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `WebRtcNetwork: not a WebSocket tracker URL: ${String(url).slice(0, 100)}`);
      }
    }
    this.trackers = [...trackers];
  }

  override get canDial(): boolean {
    return false;
  }

  /** Data-channel peers held now (connected or connecting). */
  get rtcPeerCount(): number {
    return this.rtcPeers.size;
  }

  private get maxPeers(): number {
    return this.rtcOptions.maxPeers ?? 8;
  }

  private get announceInterval(): number {
    return this.rtcOptions.announceInterval ?? 2000;
  }

  protected dial(): Connection {
    return notSupported("dialing host:port over WebRTC");
  }

  protected async listen(): Promise<void> {
    const client = new TrackerClient({
      infoHash: this.rtcOptions.infoHash ?? trackerInfoHash(this.host.topic),
      peerId: this.peerId,
      // bittorrent-tracker shares one socket per URL in a process and hands every message of an
      // info hash to each client on it: two nodes of one topic in one process would answer each
      // other's offers. A per-node query parameter gives each node its own socket.
      announce: this.trackers.map((url) => `${url}${url.includes("?") ? "&" : "?"}tooldb-node=${this.peerId.slice(0, 12)}`),
      port: 1, // required by the client in Node, unused by WebSocket trackers
      rtcConfig: rtcConfigOf(this.rtcOptions.rtcConfig),
      getAnnounceOpts: () => ({ numwant: this.offersWanted() }),
    });
    this.client = client;
    client.on("peer", (peer) => this.onPeer(peer));
    client.on("update", (data) => this.swarmSizes.set(data.announce, data.complete + data.incomplete));
    client.on("warning", (err) => this.log("tracker warning: %s", errorText(err)));
    client.on("error", (err) => this.log("tracker error: %s", errorText(err)));
    client.start();
    this.scheduleAnnounce(this.announceInterval);
    // A lost link (on any transport) may be replaceable over WebRTC: announce again.
    this.sessionOwner.on("session-close", () => this.announceSoon());
    this.log("announcing topic %s on %d tracker(s)", this.host.topic, this.trackers.length);
  }

  private onPeer(peer: TrackerPeer): void {
    peer.on("error", (err) => this.peerFailed(peer, err));
    const refusal = this.isClosed ? "closing" : this.rtcPeers.size >= this.maxPeers ? `at the cap of ${this.maxPeers} data-channel peers` : this.pairedAlready(peer);
    this.log("%s peer %s", peer.initiator ? "answered offer to" : "offer from", peer.id?.slice(0, 8));
    if (refusal) {
      this.log("refusing a WebRTC peer: %s", refusal);
      // The tracker client signals the peer right after this event: destroy it after that.
      this.dropped.add(peer);
      queueMicrotask(() => peer.destroy());
      return;
    }
    this.rtcPeers.add(peer);
    if (peer.id) this.byTrackerId.set(peer.id, peer);
    const timer = this.timers.setTimeout(() => peer.destroy(new Error("data channel did not open in time")), this.rtcOptions.connectTimeout ?? 10_000);
    // simple-peer emits 'error' or 'disconnect', not 'close', when it fails or the remote end leaves.
    const release = () => {
      this.timers.clearTimeout(timer);
      this.rtcPeers.delete(peer);
      if (peer.id && this.byTrackerId.get(peer.id) === peer) this.byTrackerId.delete(peer.id);
    };
    peer.on("close", release);
    peer.on("error", release);
    peer.on("disconnect", release);
    peer.once("connect", () => {
      this.timers.clearTimeout(timer);
      this.failedPairings = 0;
      if (this.isClosed) return peer.destroy();
      const info = { outgoing: peer.initiator, remoteHost: peer.remoteAddress, remotePort: peer.remotePort, transport: "webrtc" };
      this.attach(new DataChannelConnection(peer, info, this.carrierOptions()));
    });
  }

  /**
   * Offers for the next announce: room under the cap, but no more than the
   * peers the trackers know that we are not paired with (at least one). Each
   * offer is a peer connection kept until the tracker's offer timeout (50 s),
   * answered or not: unneeded ones only load the WebRTC stack. A peer that
   * joins later sends offers of its own.
   */
  private offersWanted(): number {
    const room = this.maxPeers - this.rtcPeers.size;
    const counted = this.swarmSizes.size > 0 ? Math.max(...this.swarmSizes.values()) - 1 - this.rtcPeers.size : room;
    return Math.max(1, Math.min(room, counted));
  }

  /**
   * Every announce pairs us again with peers we already have: keep one
   * pairing per remote tracker client. When both ends offered at once, both
   * keep the pairing offered by the smaller tracker peer id.
   */
  private pairedAlready(peer: TrackerPeer): string | undefined {
    const remote = peer.id;
    const existing = remote ? this.byTrackerId.get(remote) : undefined;
    if (!remote || !existing || !this.rtcPeers.has(existing)) return undefined;
    const offeredBy = (p: TrackerPeer) => (p.initiator ? this.peerId : remote);
    if (existing.connected || offeredBy(existing) === offeredBy(peer)) return "already paired with that tracker peer";
    if (offeredBy(peer) !== (this.peerId < remote ? this.peerId : remote)) return "crossed offers: the other pairing wins";
    this.log("crossed offers with %s: replacing the pairing it offered", remote.slice(0, 8));
    this.dropped.add(existing);
    this.rtcPeers.delete(existing);
    existing.destroy();
    return undefined;
  }

  /** A pairing ended before its data channel opened: offer again soon, unless it keeps failing. */
  private peerFailed(peer: TrackerPeer, err: Error & { code?: string }): void {
    if (peer.connected) return; // DataChannelConnection reports errors of open links
    if (this.dropped.has(peer)) return; // we destroyed it (cap, duplicate pairing)
    const reason = `WebRTC peer failed: ${errorText(err)}`;
    const theirs = err.code !== undefined && BAD_SIGNAL.has(err.code) && !LOCAL_RTC_RACE.test(err.message);
    if (theirs) this.host.refused({ code: ErrorCode.BAD_MESSAGE, reason, host: peer.remoteAddress });
    else this.log("%s", reason);
    // A peer is there but this pairing failed (a race in the WebRTC stack, a channel that did not
    // open in time): new offers now rather than at the next, maybe distant, step of the backoff.
    if (++this.failedPairings <= PROMPT_RETRIES) this.announceSoon();
  }

  /** The next announce in `delay` ms, the one after it `next` ms later, doubling from there. */
  private scheduleAnnounce(delay: number, next = delay * 2): void {
    this.timers.clearTimeout(this.announceTimer);
    this.announceTimer = this.timers.setTimeout(() => {
      this.announce();
      this.scheduleAnnounce(Math.min(next, this.rtcOptions.maxAnnounceInterval ?? 60_000));
    }, delay);
  }

  /** Announces as soon as the rate limit allows (once per announceInterval), then backs off from announceInterval again. */
  private announceSoon(): void {
    if (this.isClosed) return;
    const wait = this.lastAnnounce + this.announceInterval - this.now();
    if (wait > 0) {
      this.scheduleAnnounce(wait, this.announceInterval);
      return;
    }
    this.announce();
    this.scheduleAnnounce(this.announceInterval);
  }

  /** A fresh announce with new offers, unless the cap is reached. */
  private announce(): void {
    if (!this.client || this.isClosed || this.rtcPeers.size >= this.maxPeers) return;
    this.lastAnnounce = this.now();
    this.client.update();
  }

  protected async _close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const peer of this.rtcPeers) peer.destroy();
    this.rtcPeers.clear();
    if (!client) return;
    this.clientClosed ??= new Promise<void>((resolve) => client.destroy(() => resolve()));
    await this.clientClosed;
  }
}

/** The peer connections' configuration: `iceServers` is always ours (simple-peer fills a missing one with public STUN servers). */
export function rtcConfigOf(config: WebRtcNetworkOptions["rtcConfig"]): RTCConfiguration & { bindAddress?: string } {
  return { ...config, iceServers: config?.iceServers ?? [] };
}
