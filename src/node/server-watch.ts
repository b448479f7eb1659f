/**
 * A client's judgement of each linked server: does it answer what the
 * client asked of it? A server that passed the handshake and then leaves
 * the client's acknowledged puts (live writes and the outbox's re-sends)
 * or its queries unanswered while the link stays open would otherwise keep
 * the client forever: a browser cannot send WebSocket pings, a `ws` server
 * answers them at the transport level whatever its node does, and the
 * outbox only re-sends on the same live link. Past `timeoutMs` of silence
 * on one kind of request, with at least two asked, the link is closed as
 * unresponsive (close code 4012), reported as a `refused` event with code
 * UNRESPONSIVE, and whoever picks servers (the dialer, ServerSelection,
 * DhtPeering) tries other servers before this one again.
 *
 * Any answer counts: a putAck (stored or refused, QUOTA_EXCEEDED and
 * STORAGE_FAILED included) answers the puts, a queryAck, functionReturn or
 * reply to a get answers the requests; a queryAck or functionReturn only
 * under the id of a query or probe asked on that link and still waiting (a
 * server that sent them under ids of its own kept its silent link): every
 * such id the client's pending-request table still holds is remembered,
 * so a busy server with many queries outstanding is heard when it answers
 * the oldest. An honest server answers within
 * seconds however busy, so only silence well past the outbox's re-send
 * pace (four re-send intervals, at least 15 s) drops it. Puts are judged on
 * proven servers only: a tool-db 2.6.6 server never confirms a put.
 *
 * A client that asks nothing (an idle page, a subscriber only) has its idle
 * links probed (server-probe.ts), so they are judged too; a server dropped
 * before is forgiven one drop per good spell on a link (server-standing.ts)
 * and the `recovered` hook tells whoever picks servers.
 */
import { type Clock, TimerGroup } from "../base/clock.js";
import { ErrorCode } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import { CloseCode } from "../network/connection.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";
import { DEFAULT_PROBE_INTERVAL_MS, MIN_ASKS, probeDue, probeMessage } from "./server-probe.js";
import { DEFAULT_RECOVERY_MS, ServerStanding, type Spell } from "./server-standing.js";

/** What the client waits for: confirmations of its puts, or replies to its requests (queries, gets, functions). */
export type AskKind = "put" | "request";

/** The default bound: this many outbox re-send intervals... */
const RETRY_INTERVALS = 4;
/** ...and at least this long (ms). */
const MIN_DEFAULT_TIMEOUT_MS = 15_000;

/** The default `unresponsiveTimeout` for an outbox re-send interval. */
export function defaultUnresponsiveTimeout(outboxRetryInterval: number): number {
  return Math.max(RETRY_INTERVALS * outboxRetryInterval, MIN_DEFAULT_TIMEOUT_MS);
}

interface Silence {
  /** When the oldest ask still followed by no answer was sent. */
  since: number;
  asks: number;
  /** The ids of the requests asked: an answer must carry one (see `remember`). */
  ids: Set<string>;
  /** Past this many ids, those the client no longer waits for are forgotten. */
  idLimit: number;
  /** The ids of the watch's own probes asked (not in the client's pending-request table). */
  probes: Set<string>;
}

/**
 * Request ids a silent link holds before those no longer pending are
 * forgotten; without a pending-request table (`ServerWatchHost.waitsFor`),
 * the newest this many are kept.
 */
const MAX_WAITING_IDS = 64;
/** Probe ids remembered per silent link (a probe goes out at most twice a bound: server-probe.ts). */
const MAX_PROBE_IDS = 4;

/** One linked server, as the watch knows it. */
interface Link {
  waits: Partial<Record<AskKind, Silence>>;
  /** When the server last answered an ask (or the link was first seen). */
  lastHeard: number;
  lastProbe: number;
  /** Its good spell on this link (server-standing.ts). */
  spell: Spell;
}

export interface ServerWatchHost {
  readonly log: LogFn;
  refused(event: RefusalEvent): void;
  /** A server dropped before served a good spell on `session`: one drop forgiven, `drops` left. */
  recovered?(session: PeerSession, drops: number): void;
  /**
   * Whether the client still waits for a reply under `id` (its pending-request
   * table, which is bounded): the ids a silent link was asked under are kept
   * while it does, however many. Without it only the newest MAX_WAITING_IDS are.
   */
  waitsFor?(id: string): boolean;
}

export interface ServerWatchOptions {
  /** ms of silence after which a server is dropped; 0 turns the watch off. */
  timeoutMs: number;
  /** Off on servers: their links to servers are the mesh's, and their clients are not asked. */
  enabled: boolean;
  /** ms a link may go unasked before it is probed (server-probe.ts); 0: never probed. */
  probeIntervalMs?: number;
  /** ms of good service on one link that forgive one drop (server-standing.ts); 0: never forgiven. */
  recoverAfterMs?: number;
}

export class ServerWatch {
  private readonly links = new Map<PeerSession, Link>();
  private readonly timers: TimerGroup;
  /** Monotonic time: a silence is timed by the sweep's timer, which a wall-clock step must not shorten or stretch. */
  private readonly clock: { now(): number };
  private readonly standing: ServerStanding;
  readonly timeoutMs: number;
  private readonly enabled: boolean;
  readonly probeIntervalMs: number;
  private stopTick: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly host: ServerWatchHost,
    options: ServerWatchOptions,
    clock?: Clock,
  ) {
    this.timeoutMs = options.timeoutMs;
    this.enabled = options.enabled && options.timeoutMs > 0;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.standing = new ServerStanding(options.recoverAfterMs ?? DEFAULT_RECOVERY_MS);
    this.timers = new TimerGroup(clock);
    this.clock = { now: () => this.timers.monotonic() };
  }

  /** A link to a server opened: judged from now on, probed when idle. */
  linked(session: PeerSession): void {
    if (!this.watches(session)) return;
    this.link(session);
    if (this.probeIntervalMs > 0) this.ensureTick();
  }

  /** The client sent `session` something of `kind` that the server answers, under `id` when the answer carries it. */
  asked(session: PeerSession, kind: AskKind, id?: string): void {
    if (!this.watches(session)) return;
    if (kind === "put" && !session.provenServer) return;
    const link = this.link(session);
    const wait = this.wait(link, kind);
    wait.asks++;
    if (id !== undefined) this.remember(wait, id);
    this.ensureTick();
  }

  /** `asked` for every linked server (a frame sent to all of them). */
  askedAll(sessions: Iterable<PeerSession>, kind: AskKind, id?: string): void {
    for (const session of sessions) this.asked(session, kind, id);
  }

  /**
   * `session` answered something of `kind`: its silence is over. With `id`
   * (a reply that carries the request's id and nothing the client checked),
   * only when it is the id of an ask still waiting; without, the caller
   * matched it (a putAck of a put in the outbox, a get's verified record).
   */
  answered(session: PeerSession | undefined, kind: AskKind, id?: string): void {
    const link = session === undefined ? undefined : this.links.get(session);
    if (!session || !link?.waits[kind]) return;
    const wait = link.waits[kind]!;
    if (id !== undefined && !wait.ids.has(id) && !wait.probes.has(id)) return;
    delete link.waits[kind];
    const now = this.clock.now();
    link.lastHeard = now;
    const other = link.waits[kind === "put" ? "request" : "put"];
    const left = this.standing.answered(session.address, link.spell, now, other !== undefined && now - other.since >= this.timeoutMs / 2);
    if (left === undefined) return;
    this.host.log("server %s served well for %d ms: one drop as unresponsive forgiven, %d left", session.clientId, this.standing.recoverAfterMs, left);
    this.host.recovered?.(session, left);
  }

  /** The link closed: nothing more to judge. */
  forget(session: PeerSession): void {
    this.links.delete(session);
  }

  /** Drops as unresponsive of the server at `address` not forgiven yet. */
  dropsOf(address: string): number {
    return this.standing.dropsOf(address);
  }

  /** Servers the client waits on now, with how long (diagnostics). */
  pending(): Array<{ peer: string; kind: AskKind; asks: number; silentMs: number }> {
    const now = this.clock.now();
    return [...this.links].flatMap(([session, { waits }]) =>
      (["put", "request"] as const).flatMap((kind) => {
        const w = waits[kind];
        return w ? [{ peer: session.clientId, kind, asks: w.asks, silentMs: now - w.since }] : [];
      }),
    );
  }

  close(): void {
    this.closed = true;
    this.links.clear();
    this.timers.clearAll();
    this.stopTick = undefined;
  }

  private watches(session: PeerSession): boolean {
    return this.enabled && !this.closed && session.isServer && !session.connection.closed;
  }

  private wait(link: Link, kind: AskKind): Silence {
    return (link.waits[kind] ??= { since: this.clock.now(), asks: 0, ids: new Set(), idLimit: MAX_WAITING_IDS, probes: new Set() });
  }

  /**
   * Keeps `id` among the ids an answer may carry. Past `idLimit` the ids the
   * client no longer waits for are forgotten, and the limit becomes twice
   * what is left (a scan per doubling): what stays is bounded by the
   * pending-request table. With no table to ask, the oldest id goes.
   */
  private remember(wait: Silence, id: string): void {
    wait.ids.add(id);
    if (wait.ids.size <= wait.idLimit) return;
    const waitsFor = this.host.waitsFor;
    if (!waitsFor) {
      wait.ids.delete(wait.ids.values().next().value!);
      return;
    }
    for (const old of wait.ids) if (old !== id && !waitsFor.call(this.host, old)) wait.ids.delete(old);
    wait.idLimit = Math.max(MAX_WAITING_IDS, 2 * wait.ids.size);
  }

  private link(session: PeerSession): Link {
    let link = this.links.get(session);
    if (!link) {
      const now = this.clock.now();
      this.links.set(session, (link = { waits: {}, lastHeard: now, lastProbe: -Infinity, spell: { since: now, answers: 0 } }));
    }
    return link;
  }

  /** Judges (and probes) every quarter of the bound or of the probe interval, while there is something to do. */
  private ensureTick(): void {
    if (this.stopTick) return;
    const every = Math.min(this.timeoutMs, this.probeIntervalMs > 0 ? this.probeIntervalMs : Infinity);
    this.stopTick = this.timers.every(Math.max(10, Math.floor(every / 4)), () => this.tick());
  }

  private tick(): void {
    const now = this.clock.now();
    let waiting = false;
    for (const [session, link] of [...this.links]) {
      if (session.connection.closed) {
        this.links.delete(session);
        continue;
      }
      if (this.judge(session, link, now)) continue;
      if (probeDue(link, now, this.probeIntervalMs, this.timeoutMs)) this.probe(session, link, now);
      waiting ||= link.waits.put !== undefined || link.waits.request !== undefined;
    }
    // Nothing linked, or nothing to judge and nothing to probe.
    if (this.links.size === 0 || (!waiting && this.probeIntervalMs <= 0)) {
      this.stopTick?.();
      this.stopTick = undefined;
    }
  }

  /** Drops the server when it left something unanswered too long; returns whether it did. */
  private judge(session: PeerSession, link: Link, now: number): boolean {
    for (const kind of ["put", "request"] as const) {
      const w = link.waits[kind];
      if (w && w.asks >= MIN_ASKS && now - w.since >= this.timeoutMs) {
        this.drop(session, kind, w, now);
        return true;
      }
    }
    return false;
  }

  private probe(session: PeerSession, link: Link, now: number): void {
    const probe = probeMessage();
    if (!session.send(probe)) return;
    link.lastProbe = now;
    this.asked(session, "request");
    const probes = link.waits.request?.probes;
    probes?.add(probe.id);
    if (probes && probes.size > MAX_PROBE_IDS) probes.delete(probes.values().next().value!);
  }

  private drop(session: PeerSession, kind: AskKind, wait: Silence, now: number): void {
    this.links.delete(session);
    const drops = this.standing.dropped(session.address);
    const what = kind === "put" ? "acknowledged puts" : "requests";
    const reason = `unresponsive: ${wait.asks} ${what} unanswered for ${now - wait.since} ms`;
    this.host.log("dropping server %s (drop %d): %s", session.clientId, drops, reason);
    session.connection.close(CloseCode.UNRESPONSIVE, reason);
    this.host.refused({ code: ErrorCode.UNRESPONSIVE, reason, peer: session.clientId, host: session.host, port: session.port });
  }
}
