import type { TimerGroup } from "../base/clock.js";
import type { LogFn } from "../base/logger.js";
import { CloseCode } from "../network/connection.js";
import { dialKey } from "../network/dial-target.js";
import type { PeerSession } from "../network/peer-session.js";
import type { PeerInfo, ToolDb } from "../node/tooldb.js";
import { type Candidate, type CandidatePool, Tier } from "./candidate-pool.js";

/** A rotation dial not answered within this many first-contact bounds is given up (its failure may never be reported). */
const PENDING_BOUNDS = 4;
/** Close codes of a link whose path died (heartbeat timeout, or dropped without a close frame). */
const LOST_CODES = new Set([CloseCode.HEARTBEAT_TIMEOUT, 1006]);
/** Servers lost that way remembered at most, and for how long they are dialed again. */
const MAX_LOST = 64;
const LOST_FOR_MS = 10 * 60_000;

export interface MeshRotationDeps {
  db: ToolDb;
  pool: CandidatePool;
  timers: TimerGroup;
  random: () => number;
  minLinks: number;
  /** Mean ms between rotations (each wait drawn from 0.5–1.5 × it); 0 = off. */
  intervalMs: number;
  /** Mean ms between dials to servers whose links died (a cut path), while any is remembered; 0 = off. */
  redialLostMs: number;
  firstContactMs: number;
  /** The link to close once the one to `keep` (a node address) is up (ServerMesh.rotationVictim). */
  victim: (keep: string) => PeerSession | undefined;
  log: LogFn;
}

/**
 * Rotation of a server mesh that has its links. A server dials only while
 * it lacks links; after a partition that outlasted the heartbeat, each side
 * refilled its links from its own side and stopped dialing, so the halves
 * never linked again and writes made during the partition never crossed
 * (the simulator, 200 servers cut in two for 60 s: no link across at the
 * end, 66 of 66 puts never on every server). So a server that has its
 * `minLinks`:
 * - dials again, every few seconds, the servers whose links died without a
 *   close (heartbeat timeout, reset) in the last 10 minutes: those are the
 *   servers behind a cut, and the first of them it reaches after the heal
 *   joins the halves; that link's sync carries each side's writes across;
 * - about every `intervalMs`, dials one more server picked at random among
 *   those it trusts (verified before or listed by a server), for splits no
 *   link saw (servers that started on two sides of a cut).
 * Once such a link is up it closes one of its other links (the first a full
 * mesh would prune that is off the broadcast tree): the number of links in
 * the mesh stays the same, which servers they join keeps changing. Picks
 * go at random by network (CandidatePool), so an attacker's many listed
 * addresses from a few networks weigh as few, as they do for any dial.
 */
export class MeshRotation {
  private pending: { key: string; since: number } | undefined;
  private stopped = false;
  /** Servers whose links died, by node address: where they listen and when they were lost (oldest first). */
  private readonly lost = new Map<string, { host: string; port: number; at: number }>();
  private redialing = false;
  /** Rotations begun, and links closed to keep the mesh's size (for tests and status). */
  dials = 0;
  closed = 0;

  constructor(private readonly deps: MeshRotationDeps) {}

  start(): void {
    if (this.deps.intervalMs > 0) this.schedule();
  }

  stop(): void {
    this.stopped = true;
  }

  private schedule(): void {
    if (this.stopped) return;
    const { intervalMs, random, timers } = this.deps;
    timers.setTimeout(() => {
      this.rotate();
      this.schedule();
    }, intervalMs * (0.5 + random()));
  }

  /** One rotation: a dial to a trusted candidate not linked nor dialed now. */
  rotate(): boolean {
    if (!this.mayDial()) return false;
    const targets = new Set(this.deps.db.network.dialTargets().map((t) => dialKey(t.host, t.port)));
    const linked = new Set(this.deps.db.network.peers.map((p) => p.address));
    const usable = (c: Candidate) => !targets.has(c.key) && !(c.address !== undefined && linked.has(c.address));
    const c = this.deps.pool.pickAmong(usable, Tier.Gossip);
    return c !== undefined && this.dial(c.host, c.port);
  }

  /** A link closed: a server's that died without a close is remembered, to be dialed again. */
  disconnected(info: PeerInfo & { code: number }): void {
    if (this.stopped || !info.isServer || !LOST_CODES.has(info.code) || this.deps.redialLostMs <= 0) return;
    // Where it listens: the address this node dialed, or the one its records gave (an incoming link's port is not it).
    const known = info.outgoing && info.host !== undefined && info.port !== undefined ? { host: info.host, port: info.port } : this.deps.pool.list().find((c) => c.address === info.address);
    if (!known) return;
    this.lost.delete(info.address);
    this.lost.set(info.address, { host: known.host, port: known.port, at: this.deps.db.now() });
    if (this.lost.size > MAX_LOST) this.lost.delete(this.lost.keys().next().value!);
    if (!this.redialing) this.redialLost();
  }

  /** Dials the servers lost, one at a time in turn, while any is remembered. */
  private redialLost(): void {
    const { db, timers, random, redialLostMs } = this.deps;
    const now = db.now();
    const linked = new Set(db.network.peers.map((p) => p.address));
    for (const [address, entry] of this.lost) if (now - entry.at > LOST_FOR_MS || linked.has(address)) this.lost.delete(address);
    this.redialing = this.lost.size > 0 && !this.stopped;
    if (!this.redialing) return;
    const [address, entry] = this.lost.entries().next().value!;
    if (this.mayDial()) {
      // To the back of the turn, keeping when it was lost.
      this.lost.delete(address);
      this.lost.set(address, entry);
      this.dial(entry.host, entry.port);
    }
    timers.setTimeout(() => this.redialLost(), redialLostMs * (0.5 + random()));
  }

  /** Whether a rotation may dial now: a server with its links and no rotation dial in flight. */
  private mayDial(): boolean {
    const { db, firstContactMs, minLinks } = this.deps;
    if (this.stopped || db.isClosed || !db.network.canDial) return false;
    if (this.pending && db.now() - this.pending.since < PENDING_BOUNDS * firstContactMs) return false;
    this.pending = undefined;
    return this.links().length >= minLinks;
  }

  private dial(host: string, port: number): boolean {
    const key = dialKey(host, port);
    this.pending = { key, since: this.deps.db.now() };
    this.dials++;
    this.deps.log("rotating: dialing %s", key);
    this.deps.db.network.connectTo(host, port, { maxRetries: 0, firstContactTimeout: this.deps.firstContactMs });
    return true;
  }

  /** A link came up: the one a rotation dialed makes room by closing an older one. */
  connected(info: PeerInfo): void {
    this.lost.delete(info.address);
    if (this.stopped || !this.pending || !info.outgoing || info.host === undefined || info.port === undefined) return;
    if (dialKey(info.host, info.port) !== this.pending.key) return;
    this.pending = undefined;
    if (!info.isServer) return;
    const victim = this.deps.victim(info.address);
    if (!victim) return;
    this.closed++;
    this.deps.log("rotating: closing the link to %s", victim.clientId);
    const { remoteHost, remotePort } = victim.connection.info;
    // A link this node dialed is also kept by its dialer: stop keeping it, or it would be dialed again.
    if (victim.outgoing && remoteHost !== undefined && remotePort !== undefined) this.deps.db.network.disconnectFrom(remoteHost, remotePort);
    // One the peer dialed: as a full mesh closes it, so that the peer does not redial at once but tries others.
    else victim.connection.close(CloseCode.MESH_FULL, "rotating server links");
  }

  /** A dial failed for good. */
  failed(host: string, port: number): void {
    if (this.pending?.key === dialKey(host, port)) this.pending = undefined;
  }

  private links(): PeerSession[] {
    return [...this.deps.db.network.serverPeers];
  }
}
