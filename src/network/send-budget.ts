import type { TimerGroup } from "../base/clock.js";
import type { Limits } from "../limits/limits.js";

/** A link whose queued outgoing bytes the budget follows. */
export interface BudgetedLink {
  /** Bytes written to the link and not yet taken by the transport (read from it now). */
  backlog(): number;
  /** The remote IP its replies are charged to; undefined when exempt (a reverse proxy on this host). */
  readonly chargedIp: string | undefined;
  /** The budget's last reading of `backlog()` (kept by the budget). */
  queued: number;
  /** Since when (ms) the link's queue has not shrunk: set when it starts to fill and on every reading that finds it smaller (kept by the budget). */
  stalledSince: number;
  /** True once the link closed: what its transport still holds is freed with it, never counted again. */
  readonly gone: boolean;
  /** The budget drops the link: the server's queue is over its limit and this link holds the most. */
  /** `stalled`: its queue had not shrunk for STALL_MS, so the peer was not reading (not merely slower than a burst of replies). */
  overBudget(reason: string, stalled: boolean): void;
}

type SendLimits = Pick<Limits, "maxSendBacklog" | "maxSendBacklogPerIp" | "maxSendBuffered">;

/** How often queued bytes are read again while some link has any (ms). */
const SWEEP_MS = 100;
/** A queue that has not shrunk for this long (ms) belongs to a peer that is not reading. */
const STALL_MS = 5000;
/** A stalled link holding this many times `maxSendBacklog` unread is dropped rather than sent more. */
const HARD_BACKLOG_FACTOR = 2;
/** Under pressure, a link with this much queued has its requests wait. */
const PRESSURE_BACKLOG = 64 * 1024;

/**
 * One budget for the bytes queued to go out on every link of a server, all
 * transports together (WebSocket `bufferedAmount`, a stream's writable
 * length, a data channel's buffered amount), so that many peers that never
 * read cannot make the server hold gigabytes of replies:
 *
 * - a link's queue is read again after each frame written to it and, while
 *   any link has bytes queued, every SWEEP_MS;
 * - requests from a link wait (the intake stops reading from it) while its
 *   own queue is over `maxSendBacklog`, while its IP's links together hold
 *   over `maxSendBacklogPerIp` (replies are charged to the asker and its
 *   address), and, once the whole server holds over half of
 *   `maxSendBuffered`, while it holds more than PRESSURE_BACKLOG or has a
 *   request in flight (one request at a time per peer);
 * - a link whose queue has not shrunk for STALL_MS is dropped rather than
 *   sent a frame that would take it past HARD_BACKLOG_FACTOR ×
 *   `maxSendBacklog` (replies to requests that were in flight before it was
 *   held); a reading peer's burst is written;
 * - a link whose queue has not shrunk for STALL_MS is dropped (it does not
 *   read) when it holds over `maxSendBacklog`, or PRESSURE_BACKLOG while
 *   the server is past half of `maxSendBuffered`;
 * - when the whole server holds over `maxSendBuffered`, the links with the
 *   largest queues are dropped until it is under again.
 */
export class SendBudget {
  private total = 0;
  private highest = 0;
  private readonly perIp = new Map<string, number>();
  private readonly backlogged = new Set<BudgetedLink>();
  private stopSweep: (() => void) | undefined;

  constructor(
    private readonly limits: SendLimits,
    private readonly timers: TimerGroup,
    private readonly now: () => number,
  ) {}

  /** Bytes queued on all links at the last reading. */
  get queued(): number {
    return this.total;
  }

  /** The most bytes ever queued on all links together at a reading (metrics, tests). */
  get peak(): number {
    return this.highest;
  }

  /** Links with bytes queued at the last reading. */
  get links(): number {
    return this.backlogged.size;
  }

  /**
   * A frame was written to the link. Over the budget, links are dropped at
   * once: many replies may be written in one turn (every handler that
   * awaited a read resumes in it), and the budget must hold after each.
   */
  sent(link: BudgetedLink): void {
    this.read(link);
    if (this.total > this.limits.maxSendBuffered) this.sweep();
  }

  /** The link closed: its queue is freed with it. */
  remove(link: BudgetedLink): void {
    this.set(link, 0);
  }

  /**
   * Null when a frame of `bytes` may be written to the link now, else the
   * reason it is dropped instead: what one link holds unread stays under
   * HARD_BACKLOG_FACTOR × `maxSendBacklog`, whatever it asked for before the
   * budget could hold its requests back (many requests are in flight at once,
   * and their replies are all written in one turn). A link with nothing
   * queued may always take one frame.
   */
  mayQueue(link: BudgetedLink, bytes: number): string | null {
    this.read(link);
    const limit = HARD_BACKLOG_FACTOR * this.limits.maxSendBacklog;
    const queued = link.queued;
    // A peer that reads may be owed a burst of replies written in one turn, before its socket could drain: only a stalled one is dropped.
    if (queued === 0 || queued + bytes <= limit || !this.stalled(link)) return null;
    this.remove(link);
    return `this link did not read its replies: ${mib(queued + bytes)} would be queued, over ${mib(limit)}`;
  }

  /** True while requests from the link should wait (see the class comment). */
  held(link: BudgetedLink, outstanding = 0): boolean {
    this.read(link);
    if (link.queued > this.limits.maxSendBacklog) return true;
    if (link.chargedIp !== undefined && (this.perIp.get(link.chargedIp) ?? 0) > this.limits.maxSendBacklogPerIp) return true;
    // Under pressure every peer is served one request at a time: a fresh link cannot have dozens of large replies built at once.
    return this.total > this.limits.maxSendBuffered / 2 && (link.queued >= PRESSURE_BACKLOG || outstanding > 0);
  }

  private stalled(link: BudgetedLink): boolean {
    return link.queued > 0 && this.now() - link.stalledSince >= STALL_MS;
  }

  private read(link: BudgetedLink): void {
    this.set(link, link.gone ? 0 : link.backlog());
  }

  private set(link: BudgetedLink, bytes: number): void {
    const delta = bytes - link.queued;
    if (delta === 0) return;
    if (delta < 0 || link.queued === 0) link.stalledSince = this.now();
    link.queued = bytes;
    this.total += delta;
    if (this.total > this.highest) this.highest = this.total;
    const ip = link.chargedIp;
    if (ip !== undefined) {
      const n = (this.perIp.get(ip) ?? 0) + delta;
      if (n > 0) this.perIp.set(ip, n);
      else this.perIp.delete(ip);
    }
    if (bytes > 0) {
      this.backlogged.add(link);
      this.stopSweep ??= this.timers.every(SWEEP_MS, () => this.sweep());
    } else {
      this.backlogged.delete(link);
      if (this.backlogged.size === 0) {
        this.stopSweep?.();
        this.stopSweep = undefined;
      }
    }
  }

  private sweep(): void {
    for (const link of [...this.backlogged]) this.read(link);
    // A link whose queue has not shrunk for STALL_MS is not reading: over its backlog, or holding its part of a
    // server under pressure, it gives its bytes back.
    const pressed = this.total > this.limits.maxSendBuffered / 2;
    for (const link of [...this.backlogged]) {
      const holding = link.queued > this.limits.maxSendBacklog || (pressed && link.queued >= PRESSURE_BACKLOG);
      if (!holding || !this.stalled(link)) continue;
      const bytes = link.queued;
      this.remove(link);
      link.overBudget(`this link did not read its replies for ${STALL_MS / 1000} s (${mib(bytes)} queued)`, true);
    }
    if (this.total > this.limits.maxSendBuffered) this.enforce();
  }

  private enforce(): void {
    while (this.total > this.limits.maxSendBuffered && this.backlogged.size > 0) {
      let largest: BudgetedLink | undefined;
      for (const link of this.backlogged) if (!largest || link.queued > largest.queued) largest = link;
      const bytes = largest!.queued;
      const stalled = this.stalled(largest!);
      this.remove(largest!);
      largest!.overBudget(`the server's queue of outgoing data is full (${mib(this.total + bytes)} of ${mib(this.limits.maxSendBuffered)}); this link held the most (${mib(bytes)})${stalled ? " and did not read it" : ""}`, stalled);
    }
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
