import { TimerGroup, Wake } from "../base/clock.js";
import { createLogger, type LogFn } from "../base/logger.js";
import type { ToolDb, PeerInfo } from "../node/tooldb.js";
import type { PeerRecord } from "../records/messages.js";
import { recordUrl, urlEndpoint } from "../limits/peer-url.js";
import { isDialableAddress } from "../limits/peer-address.js";
import type { DialFailedEvent } from "../network/network-adapter.js";
import type { PeerSession } from "../network/peer-session.js";
import { CloseCode } from "../network/connection.js";
import { dialKey } from "../network/dial-target.js";
import type { PeerAddress } from "../discovery/peer-table.js";
import { type Candidate, CandidatePool, Tier } from "./candidate-pool.js";
import { MeshRotation } from "./mesh-rotation.js";
import { ClientRotation, DEFAULT_CLIENT_ROTATE_INTERVAL_MS, DEFAULT_MERIT_WINDOW_MS } from "./client-rotation.js";
import { ServerMesh, isProvenServer } from "./server-mesh.js";
import { DEFAULT_DIAL_STAGGER_MS, DEFAULT_FIRST_CONTACT_TIMEOUT_MS, DEFAULT_MAX_DIALS_IN_FLIGHT, MAX_PENALTY_MS, type PeerSource, type PeeringHooks, type PeeringOptions } from "./peering-options.js";

export * from "./peering-options.js";

/** Candidate addresses remembered at most (a flood of announces beyond it is dropped, least trusted first). */
const MAX_CANDIDATES = 4096;
/** Strangers wait at most this long for `holdStrangersUntil`. */
const MAX_STRANGER_HOLD_MS = 1_000;

/** Sources whose addresses the operator vouched for or this node verified before. */
const TRUSTED_SOURCES = new Set(["peer-cache", "bootstrap-list"]);

/**
 * Joins what discovery reports to what the database connects to. Anyone can
 * announce on a DHT topic, so every address found is a stranger until the
 * signed handshake succeeds, and a flood of bogus announces (closed ports,
 * tarpits, silent servers, servers of other topics) must not hide the real
 * servers. So: candidates are ranked (verified before, then listed by a
 * proven server, then strangers) and raced as happy eyeballs do, several in
 * flight at once (bounded apart from the links kept), a new one every
 * `dialStaggerMs` and at once when one fails; a first contact gets a short
 * connect + handshake bound and no retry; an address that fails is
 * penalised for a growing time. Servers also keep their server links within
 * the mesh's degree bounds and exchange addresses (ServerMesh).
 */
export class DhtPeering {
  private readonly log: LogFn;
  private readonly timers: TimerGroup;
  private readonly pool: CandidatePool;
  private readonly mesh: ServerMesh | undefined;
  private readonly rotation: MeshRotation | undefined;
  private readonly clientRotation: ClientRotation | undefined;
  /** Addresses this peering dialed that have not had a verified link yet. */
  private readonly firstContacts = new Map<string, PeerAddress>();
  /** Failed dials not yet replaced: each lets one more dial start without waiting for the stagger. */
  private credits = 0;
  private lastLaunch = -Infinity;
  /**
   * The pump's next run, when a penalty or the stagger ends. A timer can fire
   * a millisecond early (Wake): the pump then finds the address still
   * penalised and asks again (`nextRelease`).
   */
  private readonly wake: Wake;
  private stopped = false;
  private strangersHeld: boolean;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly maxInFlight: number;
  private readonly staggerMs: number;
  private readonly firstContactMs: number;

  constructor(
    private readonly db: ToolDb,
    private readonly discovery: PeerSource,
    private readonly topic: string,
    private readonly opts: PeeringOptions,
    private readonly hooks: PeeringHooks = {},
  ) {
    this.log = createLogger("discovery:peering");
    this.timers = new TimerGroup(db.options.clock);
    this.wake = new Wake(this.timers, () => this.pump());
    const random = opts.random ?? Math.random;
    this.maxInFlight = opts.maxDialsInFlight ?? DEFAULT_MAX_DIALS_IN_FLIGHT;
    this.staggerMs = opts.dialStaggerMs ?? DEFAULT_DIAL_STAGGER_MS;
    this.firstContactMs = opts.firstContactTimeoutMs ?? DEFAULT_FIRST_CONTACT_TIMEOUT_MS;
    this.pool = new CandidatePool({ capacity: MAX_CANDIDATES, penaltyMs: opts.penaltyMs, maxPenaltyMs: MAX_PENALTY_MS, random, now: () => db.monotonic() });
    if (db.options.server) {
      this.mesh = new ServerMesh(db, this.timers, random, opts.mesh);
      const { minLinks, rotateIntervalMs, redialLostMs } = this.mesh.options;
      const deps = { db, pool: this.pool, timers: this.timers, random, minLinks, intervalMs: rotateIntervalMs, redialLostMs, firstContactMs: this.firstContactMs, log: this.log };
      this.rotation = new MeshRotation(deps);
    } else {
      this.clientRotation = new ClientRotation({
        db, pool: this.pool, timers: this.timers, maxLinks: opts.maxConnections, log: this.log,
        intervalMs: opts.rotateIntervalMs ?? DEFAULT_CLIENT_ROTATE_INTERVAL_MS,
        meritWindowMs: opts.meritWindowMs ?? DEFAULT_MERIT_WINDOW_MS,
        dialReplacement: () => this.dialReplacement(),
        dialing: (host, port) => db.network.dialTargets().some((t) => t.host === host && t.port === port && t.state === "connecting"),
        // Listed by the operator: the bootstrap list, or the node's own `peers` ("servers to keep a link to").
        listed: (session) => db.serverTrust.listed(session),
      });
    }
    // The bootstrap list: its servers' confirmations let a client's writes go (server-trust.ts), and a client keeps their links.
    this.unsubscribe.push(db.serverTrust.addList(({ host, port }) => host !== undefined && port !== undefined && this.pool.get(host, port)?.listed === true));
    const onPeer = (_id: unknown, peer: PeerAddress, source: unknown) => this.onFound(peer, source);
    const onServers = (records: PeerRecord[], from?: PeerSession) => this.onGossip(records, from);
    const onFailed = (e: DialFailedEvent) => this.onDialFailed(e);
    const onConnect = (info: PeerInfo) => this.onConnected(info);
    const onDisconnect = (info: PeerInfo & { code: number; reason?: string }) => this.onDisconnected(info);
    const onDuplicate = () => this.pump();
    const onRecovered = (info: PeerInfo) => this.onRecovered(info);
    discovery.on("peer", onPeer);
    db.on("servers", onServers);
    db.on("dial-failed", onFailed);
    db.on("peer-connect", onConnect);
    db.on("peer-disconnect", onDisconnect);
    db.network.on("duplicate", onDuplicate);
    db.on("server-recovered", onRecovered);
    this.unsubscribe.push(
      () => db.off("server-recovered", onRecovered),
      () => discovery.off("peer", onPeer),
      () => db.off("servers", onServers),
      () => db.off("dial-failed", onFailed),
      () => db.off("peer-connect", onConnect),
      () => db.off("peer-disconnect", onDisconnect),
      () => db.network.off("duplicate", onDuplicate),
    );
    for (const peer of discovery.peers(topic)) if (isDialableAddress(peer.host, peer.port)) this.pool.offer(peer, Tier.Found);
    this.strangersHeld = opts.holdStrangersUntil !== undefined;
    if (opts.holdStrangersUntil) {
      const release = () => {
        if (!this.strangersHeld) return;
        this.strangersHeld = false;
        this.pump();
      };
      this.timers.setTimeout(release, MAX_STRANGER_HOLD_MS);
      opts.holdStrangersUntil.then(release, release);
    }
    this.mesh?.start();
    this.rotation?.start();
    this.clientRotation?.start();
    this.pump();
  }

  /** The rotation of a server's mesh links (undefined on clients). */
  get meshRotation(): MeshRotation | undefined {
    return this.rotation;
  }

  /** The degree bounds and address exchange of a server (undefined on clients). */
  get serverMesh(): ServerMesh | undefined {
    return this.mesh;
  }

  /** Candidate addresses with their tier and penalty (for status pages and tests). */
  candidates(): Array<Readonly<Candidate>> {
    return this.pool.list();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const off of this.unsubscribe) off();
    this.mesh?.stop();
    this.rotation?.stop();
    this.clientRotation?.stop();
    this.timers.clearAll();
  }

  // ---- what counts ---------------------------------------------------------

  /** Whether the DHT reported this node's own announce (its announced port on one of its hosts). */
  isSelf(peer: PeerAddress): boolean {
    return peer.port === this.opts.selfPort && (this.opts.selfHosts ?? []).includes(peer.host);
  }

  /** Links that count toward the bound: a server's server links, a client's links it dialed. */
  private linksKept(): number {
    return this.mesh ? this.mesh.degree : this.db.network.peers.filter((p) => p.outgoing).length;
  }

  private wanted(): number {
    return this.mesh ? this.mesh.options.minLinks : this.opts.maxConnections;
  }

  private ceiling(): number {
    return this.mesh ? this.mesh.options.maxLinks : this.opts.maxConnections;
  }

  // ---- candidates in -------------------------------------------------------

  private onFound(peer: PeerAddress, source: unknown): void {
    if (this.stopped) return;
    try {
      this.hooks.onPeerFound?.(peer);
    } catch (err) {
      this.log("onPeerFound threw: %O", err);
    }
    if (this.isSelf(peer) || !isDialableAddress(peer.host, peer.port)) return;
    this.pool.offer(peer, typeof source === "string" && TRUSTED_SOURCES.has(source) ? Tier.Verified : Tier.Found, undefined, source === "bootstrap-list");
    this.pump();
  }

  /** Server records a linked server listed (verified signatures): candidates, trusted as far as the lister is. */
  private onGossip(records: PeerRecord[], from: PeerSession | undefined): void {
    if (this.stopped) return;
    const tier = from && isProvenServer(from) ? Tier.ProvenGossip : Tier.Gossip;
    const self = this.db.nodeAddress();
    for (const record of records) {
      const url = recordUrl(record);
      if (!url || record.address === self) continue;
      const { host, port } = urlEndpoint(url);
      if (!this.isSelf({ host, port }) && isDialableAddress(host, port)) this.pool.offer({ host, port }, tier, record.address);
    }
    this.pump();
  }

  // ---- racing dials ----------------------------------------------------------

  /**
   * Starts dials while links are wanted: at once while fewer are in flight
   * than links are missing or a failed dial is still to be replaced,
   * otherwise one every `dialStaggerMs`; never more than `maxDialsInFlight`.
   * Once enough links are up, first contacts still in flight are called off.
   */
  private pump(): void {
    if (this.stopped || this.db.isClosed || !this.db.network.canDial) return;
    const need = this.wanted() - this.linksKept();
    const targets = new Map(this.db.network.dialTargets().map((t) => [dialKey(t.host, t.port), t.state]));
    if (need <= 0) {
      this.credits = 0;
      this.callOffFirstContacts(targets);
      return;
    }
    const usable = this.usable(targets);
    let inFlight = [...targets.values()].filter((s) => s === "connecting").length;
    while (inFlight < this.maxInFlight) {
      const now = this.db.monotonic();
      const replacing = this.credits > 0;
      if (inFlight >= need && !replacing && now - this.lastLaunch < this.staggerMs) {
        this.wake.at(this.lastLaunch + this.staggerMs);
        return;
      }
      // A server rested after a rotation only when nothing else can be dialed, nor is in flight (it would win the race).
      const c = this.pool.pick(usable) ?? (inFlight === 0 ? this.pool.pick(usable, true) : undefined);
      if (!c) {
        // Nothing to dial now: wake when a penalty ends, and ask a linked server for more.
        const release = this.pool.nextRelease();
        // A rotated-out address rests 10 rotations, past a timer's range when they are long: Wake then runs the pump
        // early, which waits again (unbounded, Node fired it after 1 ms, over and over while a dial was in flight).
        if (release !== undefined) this.wake.at(release);
        if (inFlight === 0) this.mesh?.exchangeSoon();
        return;
      }
      if (inFlight >= need) this.credits = Math.max(0, this.credits - 1);
      this.launch(c, now);
      targets.set(c.key, "connecting");
      inFlight++;
    }
  }

  /** Candidates worth a dial now: not a dial target already, not linked, not a stranger held back. */
  private usable(targets = new Map(this.db.network.dialTargets().map((t) => [dialKey(t.host, t.port), t.state]))): (c: Candidate) => boolean {
    const linked = new Set(this.db.network.peers.map((p) => p.address));
    return (c) => !targets.has(c.key) && !(c.address !== undefined && linked.has(c.address)) && !(this.strangersHeld && c.tier === Tier.Found);
  }

  /** A client's rotation wants a candidate for a slot it will free once the candidate is linked: dialed, not called off by the pump. */
  private dialReplacement(): Candidate | undefined {
    const c = this.db.network.canDial ? this.pool.pick(this.usable()) : undefined;
    if (c) this.launch(c, this.db.monotonic(), false);
    return c;
  }

  /** `firstContact`: a dial the pump calls off once enough links are up. */
  private launch(c: Candidate, now: number, firstContact = true): void {
    this.lastLaunch = now;
    if (firstContact) this.firstContacts.set(c.key, { host: c.host, port: c.port });
    // Each failure doubles the next attempt's bound (up to 4 x): a real server that was slow once, on a loaded machine, gets its time.
    const failures = Math.min(c.backoff?.attempts ?? 0, 2);
    const timeout = this.firstContactMs * 2 ** failures;
    this.log("dialing %s (tier %d, %d ms)", c.key, c.tier, timeout);
    this.db.network.connectTo(c.host, c.port, { maxRetries: this.opts.dialRetries, firstContactTimeout: timeout });
  }

  private callOffFirstContacts(targets: Map<string, string>): void {
    for (const [key, peer] of this.firstContacts) {
      this.firstContacts.delete(key);
      if (targets.get(key) === "connecting") this.db.network.disconnectFrom(peer.host, peer.port);
    }
  }

  // ---- outcomes ----------------------------------------------------------------

  private onDialFailed(e: DialFailedEvent): void {
    if (this.stopped || !e.final) return;
    const key = dialKey(e.host, e.port);
    this.firstContacts.delete(key);
    this.rotation?.failed(e.host, e.port);
    this.clientRotation?.dialFailed(e.host, e.port);
    if (e.code === CloseCode.SELF) {
      // Our own announce seen from another address: never dial it again.
      this.pool.exclude(e.host, e.port);
    } else {
      const delay = this.pool.penalise(e.host, e.port);
      this.log("backing off %s for %d ms: %s", key, delay, e.reason);
    }
    this.credits = Math.min(this.credits + 1, this.maxInFlight);
    // It no longer counts as a peer of the topic; the DHT may report it again, and the pool remembers the penalty.
    this.discovery.forget(this.topic, e.host, e.port);
    this.discovery.refresh(this.topic);
    this.pump();
  }

  private onConnected(info: PeerInfo): void {
    if (this.stopped) return;
    if (info.outgoing && info.host !== undefined && info.port !== undefined) {
      this.firstContacts.delete(dialKey(info.host, info.port));
      if (info.isServer) this.pool.verified(info.host, info.port, info.address);
      const session = info.isServer ? this.db.network.session(info.peerId) : undefined;
      if (session) this.clientRotation?.connected(session);
      else if (!info.isServer) this.clientRotation?.notServer(info.host, info.port);
    }
    try {
      this.hooks.onPeerConnected?.(info);
    } catch (err) {
      this.log("onPeerConnected threw: %O", err);
    }
    if (!this.counts(info)) return;
    // After the session's own setup (sync, subscriptions) has run: closing inside the event would race it.
    this.timers.setTimeout(() => {
      this.rotation?.connected(info);
      this.enforceCeiling(info);
    }, 0);
    this.pump();
  }

  /** Whether a link counts toward the bounds (a server's thousands of clients don't). */
  private counts(info: PeerInfo): boolean {
    return this.mesh ? info.isServer : info.outgoing;
  }

  /** Over the upper bound: a server prunes its server links; a client drops the link it just made. */
  private enforceCeiling(info: PeerInfo): void {
    if (this.stopped) return;
    if (this.mesh) {
      this.mesh.prune();
    } else if (info.outgoing && info.host !== undefined && info.port !== undefined && this.linksKept() > this.ceiling()) {
      this.log("enough links: closing the one to %s", dialKey(info.host, info.port));
      this.db.network.disconnectFrom(info.host, info.port);
    }
  }

  /** A server dropped as unresponsive served a good spell (src/node/server-standing.ts): one drop forgiven. */
  private onRecovered(info: PeerInfo): void {
    if (!this.stopped && info.outgoing && info.host !== undefined && info.port !== undefined) this.pool.forgiveUnresponsive(info.host, info.port);
  }

  private onDisconnected(info: PeerInfo & { code: number; reason?: string }): void {
    if (this.stopped) return;
    try {
      this.hooks.onPeerDisconnected?.(info);
    } catch (err) {
      this.log("onPeerDisconnected threw: %O", err);
    }
    if (info.code === CloseCode.MESH_FULL && info.outgoing && info.host !== undefined && info.port !== undefined) {
      // A real server with no room: try it again later, and the servers it listed now.
      this.db.network.disconnectFrom(info.host, info.port);
      this.pool.penalise(info.host, info.port);
    } else if (info.code === CloseCode.UNRESPONSIVE && info.outgoing && info.host !== undefined && info.port !== undefined) {
      // It left our requests unanswered (src/node/server-watch.ts): the other candidates first, it after a growing wait.
      this.db.network.disconnectFrom(info.host, info.port);
      const delay = this.pool.penaliseUnresponsive(info.host, info.port);
      this.log("backing off %s for %d ms: %s", dialKey(info.host, info.port), delay, info.reason);
    }
    this.rotation?.disconnected(info);
    if (!this.counts(info)) return;
    // Fail over at once to another known server, and look for more.
    this.pump();
    this.discovery.refresh(this.topic);
  }
}
