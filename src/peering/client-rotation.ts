/**
 * Rotation of a DHT client's links to servers. A client keeps
 * `maxConnections` links (2 by default) and dialed no more once it had
 * them; announcing a topic and proving a fresh key as a server costs a
 * stranger nothing, and a fake that answers what the client's server watch
 * asks (empty key queries, NOT_FOUND function calls, acknowledged puts it
 * then drops) is never dropped as unresponsive. So fakes that linked first
 * held a client's links for good, and a real server found later was never
 * dialed (`test/client-rotation.test.ts`).
 *
 * The links rotate on merit, with the policy of slot-rotation.ts: once per
 * `rotateIntervalMs`, while every link is up and another candidate could be
 * dialed, the link held a whole interval whose server delivered no record
 * the client asked for within `meritWindowMs` (the longest without one
 * first) is picked, and another candidate dialed; once that candidate's
 * link is up (a verified server), the picked link is closed and its address
 * rests for COOLDOWN_TICKS intervals as a stranger again; so does the
 * candidate when the picked link earned its keep meanwhile (the candidate's
 * link is closed as one over the bound; without the rest its link had made
 * it Verified, dialed first at every rotation), and a candidate that links
 * as no server backs off as a failed dial does. Make before
 * break: the link was closed first, and a client that knew one dead
 * candidate (announced, unreachable) lost one of its links each time that
 * candidate's backoff ended (5 s growing to 10 min), about 2 s without it
 * (the failed first contact) each time. A dial that fails leaves the link
 * in place; one rotation is in flight at a time.
 * A server that serves the client's reads or subscriptions keeps its link;
 * links that give nothing take turns. Only links the client asked for a
 * record (a get or a subscribe) are judged: a client that only writes has
 * nothing to judge by and keeps its links (a fake's acknowledgements of
 * puts cannot be told from a real server's; docs/security.md). A server
 * the operator listed (bootstrap list, `peers`) keeps its link whatever it
 * served: a client that only wrote earned no link merit, and its listed
 * servers' links went in turn to fakes that acknowledged its writes and
 * dropped them.
 */
import type { TimerGroup } from "../base/clock.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDb } from "../node/tooldb.js";
import { COOLDOWN_TICKS, SlotRotation, type SlotHolder } from "../network/slot-rotation.js";
import type { CandidatePool } from "./candidate-pool.js";
import { MAX_TIMER_MS } from "./peering-options.js";

export const DEFAULT_CLIENT_ROTATE_INTERVAL_MS = 60_000;
export const DEFAULT_MERIT_WINDOW_MS = 10 * 60_000;

export interface ClientRotationDeps {
  db: ToolDb;
  pool: CandidatePool;
  timers: TimerGroup;
  /** Links a full client holds. */
  maxLinks: number;
  /** ms per rotation, up to a timer's range; 0: off. */
  intervalMs: number;
  meritWindowMs: number;
  /** Dials a candidate not linked now, to take a rotated link's slot; its address, or undefined when none can be dialed. */
  dialReplacement(): { host: string; port: number } | undefined;
  /** Whether a dial to host:port is in flight (its link not up, not failed). */
  dialing(host: string, port: number): boolean;
  /** Whether the operator listed the server's address (bootstrap list, the node's `peers`): its link is never rotated out (a write-only client earns no server merit). */
  listed(session: PeerSession): boolean;
  log: LogFn;
}

interface Held extends SlotHolder {
  readonly session: PeerSession;
}

export class ClientRotation {
  private readonly slots: SlotRotation;
  /** When each link was first seen, in ticks (its probation), and in what order. */
  private readonly seen = new WeakMap<PeerSession, { sinceTick: number; seq: number }>();
  private stopTimer: (() => void) | undefined;
  /** The rotation in flight: the link to close once the candidate dialed for its slot is linked. */
  private pending: { victim: PeerSession; host: string; port: number } | undefined;

  /** Bad `intervalMs` or `meritWindowMs` (DhtPeering's `rotateIntervalMs`, `meritWindowMs`) throw INVALID_ARGUMENT. */
  constructor(private readonly deps: ClientRotationDeps) {
    const { intervalMs, meritWindowMs } = deps;
    // Past a timer's range Node fires after 1 ms: a rotation every 2 ms. A meritWindowMs of NaN let no link keep its slot.
    if (!(typeof intervalMs === "number" && intervalMs >= 0 && intervalMs <= MAX_TIMER_MS)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `rotateIntervalMs must be 0..${MAX_TIMER_MS} ms (0 = off), got ${String(intervalMs)}`);
    }
    if (!(typeof meritWindowMs === "number" && meritWindowMs >= 0)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `meritWindowMs must be a number of ms >= 0, got ${String(meritWindowMs)}`);
    this.slots = new SlotRotation({ meritWindow: deps.meritWindowMs }, () => deps.db.now());
  }

  start(): void {
    const { intervalMs, timers } = this.deps;
    if (this.stopTimer || intervalMs === 0) return;
    this.stopTimer = timers.every(intervalMs, () => this.tick());
  }

  stop(): void {
    this.stopTimer?.();
    this.stopTimer = undefined;
  }

  /** A verified link to a server this client dialed: its probation starts now; the candidate of the rotation in flight: the link it replaces is closed. */
  connected(session: PeerSession): void {
    if (!this.seen.has(session)) this.seen.set(session, { sinceTick: this.slots.tick, seq: this.slots.nextSeq() });
    const p = this.pending;
    if (!p || session.host !== p.host || session.port !== p.port) return;
    this.pending = undefined;
    const { victim } = p;
    // Gone already, or it delivered an asked-for record meanwhile (it keeps its slot: the peering closes the link over the bound).
    if (victim.connection.closed || this.deps.db.isClosed) return;
    if (victim.servedAt > 0 && this.deps.db.now() - victim.servedAt < this.deps.meritWindowMs) {
      // Abandoned: it rests as a rotated-out link does. Its link had just made it Verified, so it was dialed first at every rotation.
      this.deps.log("not keeping the link to %s:%d: the link it was dialed to replace served this client meanwhile", p.host, p.port);
      this.deps.pool.rest(p.host, p.port, COOLDOWN_TICKS * this.deps.intervalMs);
      return;
    }
    this.deps.log("rotating out the link to %s:%d: it delivered nothing this client asked for lately", victim.host, victim.port);
    this.deps.pool.rest(victim.host!, victim.port!, COOLDOWN_TICKS * this.deps.intervalMs);
    this.deps.db.network.disconnectFrom(victim.host!, victim.port!);
  }

  /**
   * The candidate of the rotation in flight linked but is no server: the
   * rotation is called off, and the address backs off as a failed dial does
   * (it ranked with addresses never dialed, so it could be dialed again at
   * the next rotation).
   */
  notServer(host: string, port: number): void {
    if (this.pending?.host !== host || this.pending.port !== port) return;
    this.pending = undefined;
    const ms = this.deps.pool.penalise(host, port);
    this.deps.log("backing off %s:%d for %d ms: dialed for a rotation, it is no server", host, port, ms);
  }

  /** A dial ended without a link: the rotation it was for, if any, is called off (its link stays). */
  dialFailed(host: string, port: number): void {
    if (this.pending?.host === host && this.pending.port === port) this.pending = undefined;
  }

  /** A rotation: the link least worth keeping gives its slot, when all are up and another server takes it. */
  tick(): void {
    this.slots.nextTick();
    const { db, maxLinks, log } = this.deps;
    if (db.isClosed) return;
    // One rotation at a time; one whose dial ended unheard (no server answered there) is over.
    if (this.pending && this.deps.dialing(this.pending.host, this.pending.port)) return;
    this.pending = undefined;
    const links = db.network.peers.filter((s) => s.outgoing && s.isServer && s.host !== undefined && s.port !== undefined);
    if (links.length < maxLinks) return;
    for (const session of links) this.connected(session);
    // Judged on what it was asked: a link never asked for a record (a client that only writes) is kept.
    const held: Held[] = links
      .filter((session) => session.askedForRecords && !this.deps.listed(session))
      .map((session) => ({ session, ...this.seen.get(session)! }));
    const victim = this.slots.victim(held);
    if (!victim) return;
    const target = this.deps.dialReplacement();
    if (!target) return;
    const { session } = victim;
    this.slots.rotated(session.address);
    this.pending = { victim: session, host: target.host, port: target.port };
    log("dialing %s:%d for the slot of %s:%d: it delivered nothing this client asked for lately", target.host, target.port, session.host, session.port);
  }
}
