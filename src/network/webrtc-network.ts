/// <reference path="../../types/bittorrent-tracker.d.ts" preserve="true" />
import { sha1 } from "@noble/hashes/legacy.js";
import { bytesToHex, randomBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import TrackerClient, { type TrackerPeer } from "bittorrent-tracker/client";
import type { TimerHandle } from "../base/clock.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import type { Connection } from "./connection.js";
import { DataChannelConnection } from "./data-channel-connection.js";
import { evictionRefusal } from "./link-guard.js";
import { type NetworkAdapterConstructor, ToolDbNetworkAdapter, notSupported, withOptions } from "./network-adapter.js";
import type { NetworkHost } from "./network-host.js";
import type { PeerSession } from "./peer-session.js";
import { SlotRotation, type SlotHolder } from "./slot-rotation.js";

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
  /**
   * Most data-channel peers at once, connected or connecting (default 8).
   * When they are full, a newcomer's offer (or an answer to ours) takes the
   * slot of a linked peer that delivered nothing this node asked for, at
   * most one per `rotateInterval` (see slot-rotation.ts); other offers are refused.
   */
  maxPeers?: number;
  /**
   * ms per slot rotation (default 60000): while the slots are full and a
   * linked peer that has been linked a whole interval delivered no record
   * this node asked for within `meritWindow`, the node offers to the swarm
   * again and a newcomer takes that peer's slot; at most one a rotation.
   * 0 or Infinity: never (whoever links first keeps its slot).
   */
  rotateInterval?: number;
  /** A peer that delivered a record this node asked for within this many ms keeps its slot (default 600000). */
  meritWindow?: number;
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
 * Offers in an announce made to rotate a slot, while the count leaves a peer
 * unpaired: the tracker hands them to peers it picks at random, paired ones
 * among them, which refuse (each such offer lingers until the tracker's
 * offer timeout), so a few find an unpaired peer sooner than one would.
 */
const ROTATION_OFFERS = 3;

/** A data-channel peer held (connected or connecting), as the slot rotation sees it. */
interface RtcHolder extends SlotHolder {
  readonly peer: TrackerPeer;
  connection: Connection | undefined;
  session: PeerSession | undefined;
}

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
  /** Held peers, connected or connecting. */
  private readonly rtcPeers = new Map<TrackerPeer, RtcHolder>();
  /** The holder of each data channel's connection, until its session opens. */
  private readonly byConnection = new WeakMap<Connection, RtcHolder>();
  private readonly slots: SlotRotation;
  /** True while the rotation timer announces: only its announces carry offers when the slots are full. */
  private rotating = false;
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
    // ms: 0 (off, for rotateInterval) up to a timer's range; Infinity also means off (a review passed a string and NaN).
    for (const [name, value] of [["rotateInterval", rtcOptions.rotateInterval], ["meritWindow", rtcOptions.meritWindow]] as const) {
      if (value !== undefined && !(typeof value === "number" && value >= 0 && (value <= 2 ** 31 - 1 || value === Infinity))) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `WebRtcNetwork: ${name} must be a number of ms from 0 to 2147483647 or Infinity`);
      }
    }
    this.slots = new SlotRotation({ meritWindow: rtcOptions.meritWindow ?? 600_000 }, () => this.now());
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
    // A data channel's session: what its peer delivers decides whether it keeps its slot.
    this.sessionOwner.on("session-open", (session) => {
      const holder = this.byConnection.get(session.connection);
      if (holder && this.rtcPeers.get(holder.peer) === holder) holder.session = session;
    });
    const rotate = this.rtcOptions.rotateInterval ?? 60_000;
    if (rotate > 0 && Number.isFinite(rotate)) this.timers.every(rotate, () => this.rotationTick());
    this.log("announcing topic %s on %d tracker(s)", this.host.topic, this.trackers.length);
  }

  private onPeer(peer: TrackerPeer): void {
    peer.on("error", (err) => this.peerFailed(peer, err));
    const refusal = this.isClosed ? "closing" : (this.pairedAlready(peer) ?? this.slotRefusal(peer));
    this.log("%s peer %s", peer.initiator ? "answered offer to" : "offer from", peer.id?.slice(0, 8));
    if (refusal) {
      this.log("refusing a WebRTC peer: %s", refusal);
      // The tracker client signals the peer right after this event: destroy it after that.
      this.dropped.add(peer);
      queueMicrotask(() => peer.destroy());
      return;
    }
    const holder: RtcHolder = { peer, sinceTick: this.slots.tick, seq: this.slots.nextSeq(), connection: undefined, session: undefined };
    this.rtcPeers.set(peer, holder);
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
      const connection = new DataChannelConnection(peer, info, this.carrierOptions());
      holder.connection = connection;
      this.byConnection.set(connection, holder);
      this.attach(connection);
    });
  }

  /**
   * Whether `peer` may have a slot: under the cap, yes; at it, it takes the
   * slot of the held peer that slot-rotation.ts says may be replaced, if any.
   */
  private slotRefusal(peer: TrackerPeer): string | undefined {
    if (this.slots.coolingDown(peer.id)) return "its slot was given to another peer lately";
    if (this.rtcPeers.size < this.maxPeers) return undefined;
    const victim = this.slots.victim(this.rtcPeers.values());
    if (!victim) return `at the cap of ${this.maxPeers} data-channel peers`;
    this.rotateOut(victim);
    return undefined;
  }

  /** Closes a held peer's link to give its slot to a newcomer. */
  private rotateOut(victim: RtcHolder): void {
    const { peer, session } = victim;
    this.slots.rotated(peer.id);
    this.dropped.add(peer);
    this.rtcPeers.delete(peer);
    if (peer.id && this.byTrackerId.get(peer.id) === peer) this.byTrackerId.delete(peer.id);
    const { code, closeCode, reason } = evictionRefusal(
      `rotated out to make room for a newcomer at the cap of ${this.maxPeers} data-channel peers: it delivered nothing this node asked for lately`,
    );
    this.log("%s (%s)", reason, session?.clientId);
    this.host.refused({ code, reason, peer: session?.clientId, host: session?.host, port: session?.port });
    // After the newcomer is held: the close's session event would otherwise announce for the free slot.
    queueMicrotask(() => (victim.connection ? victim.connection.close(closeCode, reason) : peer.destroy()));
  }

  /**
   * The rotation timer: a new tick, and while the slots are full and one
   * may be replaced, an announce whose offers find a newcomer (the tracker
   * picks the peers, not the newcomers; see offersWanted).
   */
  private rotationTick(): void {
    this.slots.nextTick();
    if (this.isClosed || this.rtcPeers.size < this.maxPeers || !this.slots.victim(this.rtcPeers.values())) return;
    this.rotating = true;
    try {
      this.announce();
    } finally {
      this.rotating = false;
    }
  }

  /**
   * Offers for the next announce: room under the cap, but no more than the
   * peers the trackers know that we are not paired with (at least one). Each
   * offer is a peer connection kept until the tracker's offer timeout (50 s),
   * answered or not: unneeded ones only load the WebRTC stack. A peer that
   * joins later sends offers of its own. When full, only the rotation
   * timer's announce carries offers (ROTATION_OFFERS, while the count leaves
   * a peer unpaired); others carry none and only refresh the count.
   */
  private offersWanted(): number {
    const room = this.maxPeers - this.rtcPeers.size;
    const counted = this.swarmSizes.size > 0 ? Math.max(...this.swarmSizes.values()) - 1 - this.rtcPeers.size : room;
    if (room <= 0) {
      return this.rotating && counted > 0 ? ROTATION_OFFERS : 0;
    }
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
    const wait = this.lastAnnounce + this.announceInterval - this.timers.monotonic();
    if (wait > 0) {
      this.scheduleAnnounce(wait, this.announceInterval);
      return;
    }
    this.announce();
    this.scheduleAnnounce(this.announceInterval);
  }

  /** A fresh announce with new offers, unless the cap is reached and no slot may be rotated. */
  private announce(): void {
    if (!this.client || this.isClosed) return;
    if (this.rtcPeers.size >= this.maxPeers && !this.slots.victim(this.rtcPeers.values())) return;
    this.lastAnnounce = this.timers.monotonic();
    this.client.update();
  }

  protected async _close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const peer of this.rtcPeers.keys()) peer.destroy();
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
