import { Backoff } from "../base/backoff.js";
import { TimerGroup } from "../base/clock.js";
import { createLogger, type LogFn } from "../base/logger.js";
import type { ToolDb, PeerInfo } from "../node/tooldb.js";
import type { DialFailedEvent } from "../network/network-adapter.js";
import { CloseCode } from "../network/connection.js";
import { dialKey } from "../network/dial-target.js";
import type { PeerAddress } from "../discovery/peer-table.js";

/** Dial attempts for an address found on the DHT before it is backed off. */
export const DEFAULT_DHT_DIAL_RETRIES = 3;
/** First penalty for an address that failed or was refused; doubles per offence. */
export const DEFAULT_PENALTY_MS = 5_000;
export const MAX_PENALTY_MS = 10 * 60_000;
const MAX_TRACKED_ADDRESSES = 1024;

/** Where DhtPeering gets candidates: the mainline Discovery, or the merged discovery of every mechanism. */
export interface PeerSource {
  on(event: "peer", listener: (id: any, peer: PeerAddress, source: any) => void): unknown;
  off(event: "peer", listener: (id: any, peer: PeerAddress, source: any) => void): unknown;
  peers(topic: string): PeerAddress[];
  refresh(topic: string): boolean;
  forget(topic: string, host: string, port: number): boolean;
}

export interface PeeringOptions {
  /** Outgoing links to keep at most. */
  maxConnections: number;
  dialRetries: number;
  penaltyMs: number;
  /** This node's own announced port and hosts (to skip itself by address). */
  selfPort?: number;
  selfHosts?: string[];
  random?: () => number;
}

export type PeeringHooks = {
  onPeerFound?: (peer: PeerAddress) => void;
  onPeerConnected?: (info: PeerInfo) => void;
  onPeerDisconnected?: (info: PeerInfo) => void;
};

interface Penalty {
  until: number;
  backoff: Backoff;
}

/**
 * Joins what the DHT reports to what the database connects to: dial each
 * found server once (skipping self, capped), back off addresses that fail or
 * answer as something else, and fail over to another known server as soon
 * as a link drops. The DHT topic is open to anyone, so nothing found there
 * is trusted before the signed handshake succeeds.
 */
export class DhtPeering {
  private readonly log: LogFn;
  private readonly timers: TimerGroup;
  private readonly penalties = new Map<string, Penalty>();
  /** Addresses found on the DHT that we dialed (and keep dialing while linked). */
  private readonly dialed = new Set<string>();
  private stopped = false;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly db: ToolDb,
    private readonly discovery: PeerSource,
    private readonly topic: string,
    private readonly opts: PeeringOptions,
    private readonly hooks: PeeringHooks = {},
  ) {
    this.log = createLogger("discovery:peering");
    this.timers = new TimerGroup(db.options.clock);
    const onPeer = (_id: unknown, peer: PeerAddress) => this.onFound(peer);
    const onFailed = (e: DialFailedEvent) => this.onDialFailed(e);
    const onConnect = (info: PeerInfo) => this.onConnected(info);
    const onDisconnect = (info: PeerInfo & { code: number }) => this.onDisconnected(info);
    discovery.on("peer", onPeer);
    db.on("dial-failed", onFailed);
    db.on("peer-connect", onConnect);
    db.on("peer-disconnect", onDisconnect);
    this.unsubscribe.push(
      () => discovery.off("peer", onPeer),
      () => db.off("dial-failed", onFailed),
      () => db.off("peer-connect", onConnect),
      () => db.off("peer-disconnect", onDisconnect),
    );
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const off of this.unsubscribe) off();
    this.timers.clearAll();
  }

  private isSelf(peer: PeerAddress): boolean {
    return peer.port === this.opts.selfPort && (this.opts.selfHosts ?? []).includes(peer.host);
  }

  private outgoingCount(): number {
    return this.db.network.peers.filter((p) => p.outgoing).length;
  }

  private penalised(key: string): boolean {
    const p = this.penalties.get(key);
    return p !== undefined && p.until > this.db.now();
  }

  private onFound(peer: PeerAddress): void {
    if (this.stopped) return;
    try {
      this.hooks.onPeerFound?.(peer);
    } catch (err) {
      this.log("onPeerFound threw: %O", err);
    }
    this.maybeDial(peer);
  }

  private maybeDial(peer: PeerAddress): boolean {
    const key = dialKey(peer.host, peer.port);
    if (this.isSelf(peer) || this.dialed.has(key) || this.penalised(key)) return false;
    if (this.outgoingCount() + this.dialsInProgress() >= this.opts.maxConnections) return false;
    this.dialed.add(key);
    this.log("dialing %s found on the DHT", key);
    this.db.network.connectTo(peer.host, peer.port, { maxRetries: this.opts.dialRetries });
    return true;
  }

  private dialsInProgress(): number {
    // Targets waiting to redial a dropped server don't count: failover must not wait for them.
    return this.db.network.dialTargets().filter((t) => t.state === "connecting").length;
  }

  /** Dials known, unpenalised servers until the connection budget is used. */
  private fillConnections(): void {
    if (this.stopped) return;
    for (const peer of this.discovery.peers(this.topic)) {
      if (this.outgoingCount() + this.dialsInProgress() >= this.opts.maxConnections) return;
      this.maybeDial(peer);
    }
  }

  private onDialFailed(e: DialFailedEvent): void {
    if (this.stopped || !e.final) return;
    const key = dialKey(e.host, e.port);
    if (!this.dialed.delete(key)) return;
    if (e.code === CloseCode.SELF) {
      // Our own announce seen from another address: never dial it again.
      this.penalties.set(key, { until: Infinity, backoff: new Backoff() });
    } else {
      this.penalise(key);
    }
    this.log("backing off %s: %s", key, e.reason);
    this.fillConnections();
    this.discovery.refresh(this.topic);
  }

  private penalise(key: string): void {
    let p = this.penalties.get(key);
    if (!p) {
      p = { until: 0, backoff: new Backoff({ initial: this.opts.penaltyMs, max: MAX_PENALTY_MS, random: this.opts.random }) };
      this.penalties.set(key, p);
      if (this.penalties.size > MAX_TRACKED_ADDRESSES) this.penalties.delete(this.penalties.keys().next().value as string);
    }
    const delay = p.backoff.next();
    p.until = this.db.now() + delay;
    const [host, port] = splitKey(key);
    // Let the DHT report the address again once the penalty is over.
    this.timers.setTimeout(() => this.discovery.forget(this.topic, host, port), delay);
  }

  private onConnected(info: PeerInfo): void {
    if (this.stopped) return;
    if (info.host !== undefined && info.port !== undefined) this.penalties.get(dialKey(info.host, info.port))?.backoff.reset();
    try {
      this.hooks.onPeerConnected?.(info);
    } catch (err) {
      this.log("onPeerConnected threw: %O", err);
    }
  }

  private onDisconnected(info: PeerInfo): void {
    if (this.stopped) return;
    try {
      this.hooks.onPeerDisconnected?.(info);
    } catch (err) {
      this.log("onPeerDisconnected threw: %O", err);
    }
    // Fail over at once to another known server, and look for more.
    this.fillConnections();
    this.discovery.refresh(this.topic);
  }
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(":");
  const host = key.slice(0, i).replace(/^\[|\]$/g, "");
  return [host, Number(key.slice(i + 1))];
}
