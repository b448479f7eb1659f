import { type Clock, TimerGroup } from "../base/clock.js";

/** A silence past this many intervals on a live link means its path was cut (see `cutBetween`). */
const REVIVAL_SILENCE = 1.5;
/** A visit later than this many intervals after the previous one ran late. */
const ON_TIME = 1.25;

/** A link the sweep visits: it pings its peer, or gives up on it when nothing came since the last visit. */
export interface Heartbeat {
  beat(): void;
}

/**
 * The heartbeat of all the links of a transport on one timer (on the
 * injected clock), instead of a repeating timer per link: every `interval`
 * each member is visited once. A link is dropped when it stayed silent for
 * a whole interval after a ping, as with a timer of its own; a link that
 * joins between two visits gets its first ping at the next one. The timer
 * runs only while there are members.
 */
export class HeartbeatSweep {
  private readonly members = new Set<Heartbeat>();
  private stop: (() => void) | undefined;
  /** When the last visit ran, and the last one that ran late (this process was busy or stopped). */
  private lastVisitAt: number | undefined;
  private lateVisitAt = -Infinity;

  constructor(
    readonly interval: number,
    private readonly timers: TimerGroup,
  ) {}

  /** False when the interval turns heartbeats off (0 or Infinity): `add` then does nothing. */
  get enabled(): boolean {
    return this.interval > 0 && this.interval < Infinity;
  }

  get size(): number {
    return this.members.size;
  }

  /** The sweep's clock's time. */
  now(): number {
    return this.timers.now();
  }

  /**
   * Whether a link that heard nothing from `since` to `now` and did not close
   * had its path cut and restored (a black hole the heartbeat outlasted): an
   * idle, healthy link hears a ping or pong about every interval, so a
   * silence past 1.5 intervals is one, unless this process itself was late
   * meanwhile (a visit ran late, or one is overdue now: a blocked event loop
   * reads nothing, however alive the path).
   */
  cutBetween(since: number, now: number): boolean {
    if (!this.enabled || now - since <= REVIVAL_SILENCE * this.interval) return false;
    if (this.lateVisitAt >= since) return false;
    return this.lastVisitAt === undefined || now - this.lastVisitAt <= ON_TIME * this.interval;
  }

  add(member: Heartbeat): void {
    if (!this.enabled) return;
    this.members.add(member);
    if (this.stop) return;
    this.lastVisitAt = this.now();
    this.stop = this.timers.every(this.interval, () => this.visit());
  }

  delete(member: Heartbeat): void {
    if (!this.members.delete(member) || this.members.size > 0) return;
    this.stop?.();
    this.stop = undefined;
  }

  // A member that gives up deletes itself while the Set is iterated: Sets allow it.
  private visit(): void {
    const now = this.now();
    if (this.lastVisitAt !== undefined && now - this.lastVisitAt > ON_TIME * this.interval) this.lateVisitAt = now;
    this.lastVisitAt = now;
    for (const member of this.members) member.beat();
  }
}

/**
 * The sweep a carrier joins: its transport's (every link of the transport on
 * one timer), or, for a carrier made on its own (tests, the stream bridge
 * used by hand), a sweep of its own with `interval` on `clock`.
 */
export function sweepFor(heartbeat: HeartbeatSweep | number, clock?: Clock): HeartbeatSweep {
  return typeof heartbeat === "number" ? new HeartbeatSweep(heartbeat, new TimerGroup(clock)) : heartbeat;
}
