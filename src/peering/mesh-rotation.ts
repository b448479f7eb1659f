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
/** Servers lost that way dialed again at most, and for how long after they were first lost. */
const MAX_LOST = 64;
const LOST_FOR_MS = 10 * 60_000;
/** Each loss of the same server within LOST_FOR_MS doubles the wait before it is dialed again, up to this. */
const MAX_REDIAL_WAIT_MS = 10 * 60_000;
/** A server's oldest links it dialed that a rotation never closes: the ones it had before any rotation could choose. */
const ANCHORS = 2;

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
  log: LogFn;
}

interface Lost {
  host: string;
  port: number;
  /** When it was first lost in this window, how often since, and when it may be dialed next. */
  at: number;
  losses: number;
  next: number;
}

/**
 * Rotation of a server mesh that has its links. A server dials only while
 * it lacks links; after a partition that outlasted the heartbeat, each side
 * refilled its links from its own side and stopped dialing, so the halves
 * never linked again and writes made during the partition never crossed
 * (the simulator, 200 servers cut in two for 60 s: no link across at the
 * end, 66 of 66 puts never on every server). So a server that has its
 * `minLinks`:
 * - dials again the servers whose links died without a close (heartbeat
 *   timeout, reset) in the last 10 minutes, every few seconds (a server lost
 *   again waits twice as long each time): those are the servers behind a
 *   cut, and the first it reaches after the heal joins the halves; that
 *   link's sync carries each side's writes across. Such a link is one more:
 *   the mesh's upper bound prunes, as for any link;
 * - about every `intervalMs`, dials one more server picked at random among
 *   those of the most trusted tier it has (CandidatePool.pickAmong: by
 *   network, so many addresses of one network weigh as one), for splits no
 *   link saw (servers that started on two sides of a cut); once that link is
 *   up it closes another at random, never one of its two oldest dialed
 *   links (anchors), so the mesh keeps its size while its links change.
 * A review found the first version closed the first link a full mesh would
 * prune that was off the broadcast tree: an attacker's links, which never
 * send duplicates, stay on the tree, so each rotation could trade an honest
 * link for one of its own; and a server that dropped its link every few
 * seconds made its neighbour close an honest link each time it was redialed.
 */
export class MeshRotation {
  private pending: { key: string; since: number; rotation: boolean } | undefined;
  private stopped = false;
  /** Servers whose links died, by node address (oldest first); kept while they may be dialed again. */
  private readonly lost = new Map<string, Lost>();
  private redialing = false;
  /** Rotations and redials begun, and links closed to keep the mesh's size (for tests and status). */
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
    return c !== undefined && this.dial(c.host, c.port, true);
  }

  /** A link closed: a server's that died without a close is remembered, to be dialed again. */
  disconnected(info: PeerInfo & { code: number }): void {
    if (this.stopped || !info.isServer || !LOST_CODES.has(info.code) || this.deps.redialLostMs <= 0) return;
    // Where it listens: the address this node dialed, or the one its records gave (an incoming link's port is not it).
    const known = info.outgoing && info.host !== undefined && info.port !== undefined ? { host: info.host, port: info.port } : this.deps.pool.list().find((c) => c.address === info.address);
    if (!known) return;
    const now = this.deps.db.monotonic();
    const before = this.lost.get(info.address);
    const again = before !== undefined && now - before.at < LOST_FOR_MS;
    const losses = again ? before.losses + 1 : 1;
    const wait = Math.min(MAX_REDIAL_WAIT_MS, this.deps.redialLostMs * 2 ** (losses - 1));
    this.lost.delete(info.address);
    this.lost.set(info.address, { host: known.host, port: known.port, at: again ? before.at : now, losses, next: now + wait * (0.5 + this.deps.random()) });
    if (this.lost.size > MAX_LOST) this.lost.delete(this.lost.keys().next().value!);
    if (!this.redialing) this.redialLost();
  }

  /** Dials the servers lost whose wait is over, one at a time in turn, while any is remembered. */
  private redialLost(): void {
    const { db, timers, random, redialLostMs } = this.deps;
    const now = db.monotonic();
    const linked = new Set(db.network.peers.map((p) => p.address));
    for (const [address, entry] of this.lost) if (now - entry.at > LOST_FOR_MS && !linked.has(address)) this.lost.delete(address);
    const due = [...this.lost].find(([address, entry]) => entry.next <= now && !linked.has(address));
    this.redialing = !this.stopped && [...this.lost.keys()].some((address) => !linked.has(address));
    if (!this.redialing) return;
    if (due && this.mayDial()) {
      const [address, entry] = due;
      // To the back of the turn; dialed again after the same wait if this dial fails too.
      this.lost.delete(address);
      this.lost.set(address, { ...entry, next: now + Math.min(MAX_REDIAL_WAIT_MS, redialLostMs * 2 ** (entry.losses - 1)) });
      this.dial(entry.host, entry.port, false);
    }
    timers.setTimeout(() => this.redialLost(), redialLostMs * (0.5 + random()));
  }

  /** Whether a rotation may dial now: a server with its links and no rotation dial in flight. */
  private mayDial(): boolean {
    const { db, firstContactMs, minLinks } = this.deps;
    if (this.stopped || db.isClosed || !db.network.canDial) return false;
    if (this.pending && db.monotonic() - this.pending.since < PENDING_BOUNDS * firstContactMs) return false;
    this.pending = undefined;
    return this.links().length >= minLinks;
  }

  private dial(host: string, port: number, rotation: boolean): boolean {
    const key = dialKey(host, port);
    this.pending = { key, since: this.deps.db.monotonic(), rotation };
    this.dials++;
    this.deps.log("%s: dialing %s", rotation ? "rotating" : "redialing a lost server", key);
    this.deps.db.network.connectTo(host, port, { maxRetries: 0, firstContactTimeout: this.deps.firstContactMs });
    return true;
  }

  /** A link came up: the one a rotation dialed makes room by closing another. */
  connected(info: PeerInfo): void {
    if (this.stopped || !this.pending || !info.outgoing || info.host === undefined || info.port === undefined) return;
    if (dialKey(info.host, info.port) !== this.pending.key) return;
    const { rotation } = this.pending;
    this.pending = undefined;
    if (!rotation || !info.isServer) return;
    const victim = this.victim(info.address);
    if (!victim) return;
    this.closed++;
    this.deps.log("rotating: closing the link to %s", victim.clientId);
    const { remoteHost, remotePort } = victim.connection.info;
    // A link this node dialed is also kept by its dialer: stop keeping it, or it would be dialed again.
    if (victim.outgoing && remoteHost !== undefined && remotePort !== undefined) this.deps.db.network.disconnectFrom(remoteHost, remotePort);
    // One the peer dialed, or one no dial target keeps (a Hyperswarm link): closed as a full mesh closes it, so the peer tries others.
    if (!victim.connection.closed) victim.connection.close(CloseCode.MESH_FULL, "rotating server links");
  }

  /** A dial failed for good. */
  failed(host: string, port: number): void {
    if (this.pending?.key === dialKey(host, port)) this.pending = undefined;
  }

  /** At random among the server links but `keep` and the anchors; none while that would leave fewer than minLinks. */
  private victim(keep: string): PeerSession | undefined {
    const others = this.links().filter((s) => s.address !== keep);
    if (others.length < this.deps.minLinks) return undefined;
    const anchors = new Set(
      others
        .filter((s) => s.outgoing)
        .sort((a, b) => a.openedAt - b.openedAt)
        .slice(0, ANCHORS),
    );
    const open = others.filter((s) => !anchors.has(s));
    return open[Math.floor(this.deps.random() * open.length)];
  }

  private links(): PeerSession[] {
    return [...this.deps.db.network.serverPeers];
  }
}
