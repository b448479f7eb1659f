import type { TimerHandle } from "../base/clock.js";
import { Backoff, type BackoffOptions } from "../base/backoff.js";

/**
 * Bookkeeping for one host:port this node wants to stay connected to.
 * - connecting/connected: a link exists or is being made;
 * - waiting: a redial is scheduled after a backoff delay;
 * - parked: the same node is reachable through another link; redial when it drops;
 * - failed: refused for good (other topic, bad identity, self) or out of retries.
 */
export type DialState = "idle" | "connecting" | "connected" | "waiting" | "parked" | "failed";

export class DialTarget {
  state: DialState = "idle";
  /** Node address learned at handshake. */
  address: string | undefined;
  /** Consecutive failed attempts since the last successful handshake. */
  failures = 0;
  /** The pending redial while `waiting` (cleared when a redial is hurried, so it cannot dial a second time). */
  retry: TimerHandle | undefined;
  readonly backoff: Backoff;
  /** Links to it this node dropped as unresponsive (close code 4012); a handshake does not reset it, a good spell forgives one (Dialer.forgiveUnresponsive). */
  unresponsive = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly maxRetries: number,
    backoff: BackoffOptions,
    /** Until the first handshake succeeds: bound (ms) on each attempt, and no retry. */
    public firstContactTimeout?: number,
  ) {
    this.backoff = new Backoff(backoff);
  }

  get key(): string {
    return dialKey(this.host, this.port);
  }

  get outOfRetries(): boolean {
    return this.failures > (this.firstContactTimeout === undefined ? this.maxRetries : 0);
  }
}

export function dialKey(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
