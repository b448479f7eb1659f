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
 * reply to a get answers the requests. An honest server answers within
 * seconds however busy, so only silence well past the outbox's re-send
 * pace (four re-send intervals, at least 15 s) drops it. Puts are judged on
 * proven servers only: a tool-db 2.6.6 server never confirms a put.
 */
import { type Clock, TimerGroup } from "../base/clock.js";
import { ErrorCode } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import { CloseCode } from "../network/connection.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";

/** What the client waits for: confirmations of its puts, or replies to its requests (queries, gets, functions). */
export type AskKind = "put" | "request";

/** Unanswered asks needed besides the time: one lost frame never drops a server. */
const MIN_ASKS = 2;
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
}

export interface ServerWatchHost {
  readonly log: LogFn;
  refused(event: RefusalEvent): void;
}

export class ServerWatch {
  private readonly waits = new Map<PeerSession, Partial<Record<AskKind, Silence>>>();
  private readonly timers: TimerGroup;
  private readonly clock: Pick<Clock, "now">;
  private stopSweep: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly host: ServerWatchHost,
    /** ms of silence after which a server is dropped; 0 turns the watch off. */
    readonly timeoutMs: number,
    /** Off on servers: their links to servers are the mesh's, and their clients are not asked. */
    private readonly enabled: boolean,
    clock?: Clock,
  ) {
    this.timers = new TimerGroup(clock);
    this.clock = clock ?? { now: () => Date.now() };
  }

  /** The client sent `session` something of `kind` that the server answers. */
  asked(session: PeerSession, kind: AskKind): void {
    if (!this.enabled || this.closed || this.timeoutMs <= 0 || !session.isServer || session.connection.closed) return;
    if (kind === "put" && !session.provenServer) return;
    let waits = this.waits.get(session);
    if (!waits) this.waits.set(session, (waits = {}));
    const wait = (waits[kind] ??= { since: this.clock.now(), asks: 0 });
    wait.asks++;
    this.ensureSweep();
  }

  /** `asked` for every linked server (a frame sent to all of them). */
  askedAll(sessions: Iterable<PeerSession>, kind: AskKind): void {
    for (const session of sessions) this.asked(session, kind);
  }

  /** `session` answered something of `kind`: its silence is over. */
  answered(session: PeerSession | undefined, kind: AskKind): void {
    const waits = session === undefined ? undefined : this.waits.get(session);
    if (!session || !waits?.[kind]) return;
    delete waits[kind];
    if (!waits.put && !waits.request) this.waits.delete(session);
  }

  /** The link closed: nothing more to judge. */
  forget(session: PeerSession): void {
    this.waits.delete(session);
  }

  /** Servers the client waits on now, with how long (diagnostics). */
  pending(): Array<{ peer: string; kind: AskKind; asks: number; silentMs: number }> {
    const now = this.clock.now();
    return [...this.waits].flatMap(([session, waits]) =>
      (["put", "request"] as const).flatMap((kind) => {
        const w = waits[kind];
        return w ? [{ peer: session.clientId, kind, asks: w.asks, silentMs: now - w.since }] : [];
      }),
    );
  }

  close(): void {
    this.closed = true;
    this.waits.clear();
    this.timers.clearAll();
    this.stopSweep = undefined;
  }

  private ensureSweep(): void {
    if (this.stopSweep) return;
    this.stopSweep = this.timers.every(Math.max(10, Math.floor(this.timeoutMs / 4)), () => this.sweep());
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [session, waits] of [...this.waits]) {
      if (session.connection.closed) {
        this.waits.delete(session);
        continue;
      }
      for (const kind of ["put", "request"] as const) {
        const w = waits[kind];
        if (w && w.asks >= MIN_ASKS && now - w.since >= this.timeoutMs) {
          this.drop(session, kind, w, now);
          break;
        }
      }
    }
    if (this.waits.size === 0) {
      this.stopSweep?.();
      this.stopSweep = undefined;
    }
  }

  private drop(session: PeerSession, kind: AskKind, wait: Silence, now: number): void {
    this.waits.delete(session);
    const what = kind === "put" ? "acknowledged puts" : "requests";
    const reason = `unresponsive: ${wait.asks} ${what} unanswered for ${now - wait.since} ms`;
    this.host.log("dropping server %s: %s", session.clientId, reason);
    session.connection.close(CloseCode.UNRESPONSIVE, reason);
    this.host.refused({ code: ErrorCode.UNRESPONSIVE, reason, peer: session.clientId, host: session.host, port: session.port });
  }
}
