/// <reference path="../../types/bittorrent-dht.d.ts" preserve="true" />
import DHT from "bittorrent-dht";
import type { AddressInfo } from "node:net";
import { TimerGroup } from "../base/clock.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import { createLogger } from "../base/logger.js";
import { TypedEmitter } from "../base/typed-emitter.js";
import { topicInfoHash, type Topic } from "./info-hash.js";
import { localAddressesFor } from "./local-addresses.js";
import { isPort, resolveOptions, type DiscoveryOptions, type ResolvedOptions } from "./options.js";
import type { PeerAddress } from "./peer-table.js";
import { isBindFailure } from "./socket-errors.js";
import { capGetPeersReplies } from "./peer-reply-cap.js";
import { limitAnnouncesPerAddress } from "./announce-quota.js";
import { eagerAnnounce } from "./eager-announce.js";
import type { AnnounceFn } from "./announcer.js";
import { loadDhtState, saveDhtState } from "./state.js";
import { TopicSession, type DoneCallback } from "./topic-session.js";

export type PeerType = "dht";

/**
 * Events. There is deliberately no 'error' event: Node's EventEmitter throws
 * an unhandled 'error', so a fatal DHT error (e.g. EADDRINUSE on bind) is
 * emitted as 'failure' when someone listens, and only logged otherwise.
 * No event fires once destroy() has been called.
 */
export type DiscoveryEvents = {
  /** A peer announced on a joined topic; once per (topic, host:port) until forgotten or expired. */
  peer: [id: Topic, peer: PeerAddress, type: PeerType];
  /** The DHT UDP socket is bound. */
  listening: [address: AddressInfo];
  /** The DHT finished bootstrapping (immediately for a seed). */
  ready: [];
  /** Non-fatal DHT trouble (bad packets, send errors). */
  warning: [err: Error];
  /** The DHT socket failed (bind error): this instance stops working; create a new one. */
  failure: [err: ToolDbError];
  /** One announce of (topic → port) reached `nodes` DHT nodes. */
  announced: [id: Topic, port: number, nodes: number];
  /** One lookup round finished (`err` set on failure or timeout). */
  lookup: [id: Topic, nodes: number, err: Error | null];
};

export interface JoinOptions {
  /** Peers wanted on this topic before lookups slow down (default: the `want` option). */
  want?: number;
}

export interface ListEntry {
  id: Topic;
  /** The announced port; 0 for a lookup-only join (as discovery-channel). */
  port: number;
}

const log = createLogger("discovery");

/**
 * Peer discovery on the BitTorrent mainline DHT (bittorrent-dht 11), with
 * discovery-channel's API (join/leave/list/destroy, 'peer' events) plus
 * de-duplication, adaptive lookups, re-announce and routing-table persistence.
 *
 * BEP 5 has no unannounce: after leave()/destroy() our records stay on the
 * storing nodes until their maxAge expires, so consumers must health-check
 * the peers they are given.
 */
export class Discovery extends TypedEmitter<DiscoveryEvents> {
  /** The underlying DHT node (exposed as discovery-channel does). */
  readonly dht: DHT;
  destroyed = false;
  private failed: ToolDbError | undefined;
  private readonly opts: ResolvedOptions;
  private readonly timers: TimerGroup;
  private readonly sessions = new Map<string, TopicSession>();
  private selfHosts: Set<string> | undefined;
  private closing: Promise<void> | undefined;

  // discovery-channel's `peer` listeners name the topic `id: string` (the ToolDb guide's do): the
  // topic is passed back as it was joined, so a channel joined by strings may be listened to so.
  override on(event: "peer", listener: (id: string, peer: PeerAddress, type: PeerType) => void): this;
  override on<K extends keyof DiscoveryEvents & string>(event: K, listener: (...args: DiscoveryEvents[K]) => void): this;
  override on(event: keyof DiscoveryEvents & string, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override once(event: "peer", listener: (id: string, peer: PeerAddress, type: PeerType) => void): this;
  override once<K extends keyof DiscoveryEvents & string>(event: K, listener: (...args: DiscoveryEvents[K]) => void): this;
  override once(event: keyof DiscoveryEvents & string, listener: (...args: never[]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  override off(event: "peer", listener: (id: string, peer: PeerAddress, type: PeerType) => void): this;
  override off<K extends keyof DiscoveryEvents & string>(event: K, listener: (...args: DiscoveryEvents[K]) => void): this;
  override off(event: keyof DiscoveryEvents & string, listener: (...args: never[]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  /** Announces reach the closest nodes while their lookup still waits on departed ones (eager-announce.ts). */
  private readonly announceFn: AnnounceFn;

  constructor(options?: DiscoveryOptions) {
    super();
    this.opts = resolveOptions(options);
    this.timers = new TimerGroup(this.opts.clock);
    const { bootstrap, maxAge, timeout, host, port } = this.opts;
    // Our `host` is a bind address; bittorrent-dht's own `host` option means something else.
    this.dht = new DHT({ bootstrap, maxAge, timeout });
    // Our node answers get_peers as mainline nodes do: a mass announce can't blank a topic on it.
    capGetPeersReplies(this.dht);
    // And one IP cannot flush everyone else's announces out of its store (announce-quota.ts).
    limitAnnouncesPerAddress(this.dht);
    this.announceFn = eagerAnnounce(this.dht, this.timers) ?? ((hash, port, cb) => this.dht.announce(hash, port, cb));
    this.dht.on("peer", (peer, infoHash) => this.onPeer(peer, infoHash));
    this.dht.on("warning", (err) => this.warn(err));
    this.dht.on("error", (err) => this.fail(err));
    this.dht.on("listening", () => this.emit("listening", this.dht.address()));
    this.dht.on("ready", () => this.emit("ready"));
    // Bind now: otherwise the first send binds 0.0.0.0 on a random port.
    this.dht.listen(port, host);
    this.loadState();
  }

  /**
   * Joins a topic. With a port: announces (topic → port) periodically and
   * looks up; without: looks up only, never announces. `cb` runs after the
   * first announce (with a port) or the next lookup (without).
   */
  join(topic: Topic, port?: number | null, opts?: JoinOptions | DoneCallback, cb?: DoneCallback): this;
  join(topic: Topic, cb: DoneCallback): this;
  join(
    topic: Topic,
    portArg?: number | null | DoneCallback,
    optsArg?: JoinOptions | DoneCallback,
    cbArg?: DoneCallback,
  ): this {
    let port = portArg;
    let opts = optsArg;
    let cb = cbArg;
    if (typeof port === "function") [cb, port] = [port, undefined];
    if (typeof opts === "function") [cb, opts] = [opts, undefined];
    if (port !== undefined && port !== null && !isPort(port)) {
      // Port 0 would be bittorrent-dht's implied_port (the DHT's UDP port), never what a caller means.
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `join: port must be an integer in 1..65535, got ${String(port)}`);
    }
    const want = opts?.want;
    if (want !== undefined && (!Number.isInteger(want) || want < 1)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "join: want must be an integer >= 1");
    }
    const infoHash = this.infoHashOf(topic);
    if (this.destroyed) {
      log("join after destroy ignored");
      if (cb) queueMicrotask(() => cb(new ToolDbError(ErrorCode.CLOSED, "discovery destroyed")));
      return this;
    }
    const key = infoHash.toString("hex");
    let session = this.sessions.get(key);
    if (!session) {
      session = this.createSession(topic, infoHash);
      this.sessions.set(key, session);
    }
    if (want !== undefined) session.want = want;
    const failed = this.failed;
    if (typeof port === "number") {
      session.addPort(port, failed ? undefined : cb);
      log(`join ${key} port ${port}`);
    } else {
      session.lookupOnly = true;
      if (cb && !failed) session.whenLookedUp(cb);
      log(`join ${key} (lookup only)`);
    }
    if (failed) {
      if (cb) queueMicrotask(() => cb(failed));
    } else {
      session.start();
    }
    return this;
  }

  /**
   * Leaves a topic: without a port (or 0) stops everything for it; with a
   * port stops announcing that port (lookups stop when nothing remains).
   * Records already stored on the DHT expire there after their maxAge.
   */
  leave(topic: Topic, port?: number | null): this {
    const key = this.infoHashOf(topic).toString("hex");
    const session = this.sessions.get(key);
    if (!session) return this;
    if (port) {
      session.removePort(port);
      if (session.lookupOnly || session.ports.length > 0) return this;
    }
    session.stop(new ToolDbError(ErrorCode.CLOSED, "topic left"));
    this.sessions.delete(key);
    log(`leave ${key}`);
    return this;
  }

  /** Joined topics, one entry per announced port (port 0 = lookup only). */
  list(): ListEntry[] {
    const out: ListEntry[] = [];
    for (const s of this.sessions.values()) {
      if (s.lookupOnly) out.push({ id: s.id, port: 0 });
      for (const port of s.ports) out.push({ id: s.id, port });
    }
    return out;
  }

  /** Peers reported on a topic and still remembered (not forgotten or expired), excluding ourselves. */
  peers(topic: Topic): PeerAddress[] {
    return this.session(topic)?.peers.list() ?? [];
  }

  /**
   * Makes a peer reportable again (e.g. after its connection failed), and
   * brings lookups back to the fast pace if the topic now lacks peers.
   * Consumers should forget peers they cannot reach: stale DHT records of a
   * dead server otherwise keep counting toward `want`, which keeps lookups slow.
   */
  forget(topic: Topic, host: string, port: number): boolean {
    return this.session(topic)?.forget(host, port) ?? false;
  }

  /**
   * Looks up the topic now (rate-limited to one lookup per fastInterval) and
   * stays at the fast pace until a new peer is found. Call it on losing a peer.
   */
  refresh(topic: Topic): boolean {
    const session = this.session(topic);
    if (!session || this.destroyed || this.failed) return false;
    session.refresh();
    return true;
  }

  /** The info hash a topic is announced under with this instance's `hash` option. */
  infoHashOf(topic: Topic): Buffer {
    if (typeof topic !== "string" && !(topic instanceof Uint8Array)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "topic must be a string or a Uint8Array");
    }
    return topicInfoHash(topic, this.opts.hash);
  }

  /** The bound UDP address, or null before 'listening' and after destroy/failure. */
  address(): AddressInfo | null {
    if (!this.dht.listening || this.dht.destroyed) return null;
    return this.dht.address();
  }

  /** Writes the routing table atomically to `path` (default: statePath). Returns the node count. */
  async saveState(path = this.opts.statePath): Promise<number> {
    if (!path) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "saveState: no path and no statePath option");
    return saveDhtState(path, this.dht.toJSON().nodes, this.opts.clock.now());
  }

  /**
   * Stops everything: timers, lookups, announces, the UDP socket. Idempotent;
   * the routing table is saved first when statePath is set. No event fires
   * after this call.
   */
  destroy(cb?: () => void): Promise<void> {
    this.closing ??= this.close();
    if (cb) void this.closing.then(() => cb());
    return this.closing;
  }

  private async close(): Promise<void> {
    this.destroyed = true;
    this.silence();
    const reason = new ToolDbError(ErrorCode.CLOSED, "discovery destroyed");
    for (const s of this.sessions.values()) s.stop(reason);
    this.sessions.clear();
    this.timers.clearAll();
    const nodes = this.opts.statePath && !this.failed ? this.dht.toJSON().nodes : [];
    await new Promise<void>((resolve) => this.dht.destroy(() => resolve()));
    // Never overwrite a useful state file with an empty table.
    if (this.opts.statePath && nodes.length > 0) {
      await saveDhtState(this.opts.statePath, nodes, this.opts.clock.now()).catch((err: unknown) =>
        log(`saving DHT state failed: ${errorText(err)}`),
      );
    }
    log("destroyed");
  }

  private session(topic: Topic): TopicSession | undefined {
    return this.sessions.get(this.infoHashOf(topic).toString("hex"));
  }

  private createSession(topic: Topic, infoHash: Buffer): TopicSession {
    const o = this.opts;
    return new TopicSession(topic, infoHash, o.want, {
      lookup: {
        lookup: (hash, cb) => this.dht.lookup(hash, cb),
        timers: this.timers,
        clock: o.clock,
        random: o.random,
        fastInterval: o.fastInterval,
        slowInterval: o.slowInterval,
        warmupInterval: Math.min(o.warmupInterval, o.fastInterval),
        jitter: o.jitter,
        timeout: o.lookupTimeout,
      },
      announce: {
        // Always the real port: port 0 would announce the DHT's UDP port (implied_port).
        announce: this.announceFn,
        timers: this.timers,
        random: o.random,
        interval: o.announceInterval,
        jitter: o.jitter,
        retryInitial: o.fastInterval,
        timeout: o.lookupTimeout,
      },
      peerTtl: o.peerTtl,
      maxPeers: o.maxPeersPerTopic,
      onLookup: (s, err, nodes) => {
        if (err) log(`lookup ${s.infoHash.toString("hex")} failed: ${err.message}`);
        this.emit("lookup", s.id, nodes, err);
      },
      onAnnounce: (s, port, err, nodes) => {
        if (err) {
          log(`announce ${s.infoHash.toString("hex")} port ${port} failed (will retry): ${err.message}`);
          return;
        }
        this.emit("announced", s.id, port, nodes);
      },
    });
  }

  private onPeer(peer: PeerAddress, infoHash: Buffer): void {
    if (this.destroyed) return;
    const session = this.sessions.get(infoHash.toString("hex"));
    if (!session) return; // another topic, or one we left
    const self = session.hasPort(peer.port) && this.localHosts().has(peer.host);
    const isNew = session.see(peer, this.opts.clock.now(), self);
    if (!isNew || (self && this.opts.skipSelf)) return;
    log(`peer ${peer.host}:${peer.port} on ${infoHash.toString("hex")}`);
    this.emit("peer", session.id, { host: peer.host, port: peer.port }, "dht");
  }

  private localHosts(): Set<string> {
    this.selfHosts ??= localAddressesFor(this.dht.listening ? this.dht.address().address : this.opts.host);
    return this.selfHosts;
  }

  private warn(err: Error & { syscall?: string }): void {
    if (isBindFailure(err, this.dht.listening)) return this.fail(err);
    log(`DHT warning: ${err.message}`);
    this.emit("warning", err);
  }

  private fail(err: Error & { code?: string }): void {
    if (this.destroyed || this.failed) {
      log(`DHT error after failure/destroy: ${err.message}`);
      return;
    }
    const failure = new ToolDbError(ErrorCode.NETWORK_FAILED, `DHT socket failed: ${err.message}`, err);
    this.failed = failure;
    for (const s of this.sessions.values()) s.stop(failure);
    this.timers.clearAll();
    // Release the socket now: a later send on an unbound socket would bind 0.0.0.0.
    this.dht.destroy();
    if (this.listenerCount("failure") > 0) this.emit("failure", failure);
    else log(`DHT failed (no 'failure' listener): ${err.message}`);
  }

  private loadState(): void {
    const path = this.opts.statePath;
    if (!path) return;
    try {
      const nodes = loadDhtState(path);
      // addNode pings each saved node; those that answer join the routing table.
      for (const n of nodes) this.dht.addNode({ host: n.host, port: n.port });
      log(`loaded ${nodes.length} DHT nodes from ${path}`);
    } catch (err) {
      log(`ignoring unreadable DHT state ${path}: ${errorText(err)}`);
    }
    if (this.opts.stateSaveInterval > 0) {
      this.timers.every(this.opts.stateSaveInterval, () => {
        if (this.dht.toJSON().nodes.length === 0) return;
        this.saveState().catch((err: unknown) => log(`saving DHT state failed: ${errorText(err)}`));
      });
    }
  }
}

/** discovery-channel-compatible factory: `DC(opts).join(topic, port)`. */
export default function DC(opts?: DiscoveryOptions): Discovery {
  return new Discovery(opts);
}
