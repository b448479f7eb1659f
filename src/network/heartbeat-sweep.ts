import { type Clock, TimerGroup } from "../base/clock.js";

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

  add(member: Heartbeat): void {
    if (!this.enabled) return;
    this.members.add(member);
    this.stop ??= this.timers.every(this.interval, () => this.visit());
  }

  delete(member: Heartbeat): void {
    if (!this.members.delete(member) || this.members.size > 0) return;
    this.stop?.();
    this.stop = undefined;
  }

  // A member that gives up deletes itself while the Set is iterated: Sets allow it.
  private visit(): void {
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
