import type { BackoffOptions } from "../base/backoff.js";
import type { TimerGroup } from "../base/clock.js";
import { CloseCode, isPermanentRefusal } from "./connection.js";
import { DialTarget, dialKey } from "./dial-target.js";

export interface DialFailedEvent {
  host: string;
  port: number;
  code: number;
  reason: string;
  /** No further attempts will be made. */
  final: boolean;
}

/** Why a target is given up when no open transport of the node dials addresses (Dialer.dropAll). */
export const NO_DIALER = "no open transport of this node dials addresses";

/** First wait before a server dropped as unresponsive is dialed again (the default `unresponsivePenalty`); doubles per drop, up to UNRESPONSIVE_MAX_PENALTY_MS. */
export const UNRESPONSIVE_PENALTY_MS = 5_000;
export const UNRESPONSIVE_MAX_PENALTY_MS = 10 * 60_000;

/** How long a server dropped `drops` times as unresponsive waits before it is tried again, the first wait `firstMs`. */
export function unresponsivePenalty(drops: number, firstMs = UNRESPONSIVE_PENALTY_MS): number {
  return Math.min(UNRESPONSIVE_MAX_PENALTY_MS, firstMs * 2 ** Math.max(0, Math.min(drops - 1, 16)));
}

export interface DialerHooks {
  /** Open a link for the target now (the adapter dials and attaches it). */
  open(target: DialTarget): void;
  failed(event: DialFailedEvent): void;
}

/**
 * The addresses a node keeps links to, and when to try each again:
 * exponential backoff with jitter after a failure, give-up after
 * `maxRetries` or a permanent refusal, parking while the same node is
 * reachable through another link.
 */
export class Dialer {
  private readonly targets = new Map<string, DialTarget>();
  private closed = false;

  constructor(
    private readonly defaults: { maxRetries: number; backoff: BackoffOptions; unresponsivePenalty?: number },
    private readonly timers: TimerGroup,
    private readonly hooks: DialerHooks,
  ) {}

  /** Starts keeping a link to host:port; a repeated call only hurries a waiting redial. */
  connect(host: string, port: number, opts: { maxRetries?: number; firstContactTimeout?: number } = {}): void {
    if (this.closed) return;
    const existing = this.targets.get(dialKey(host, port));
    if (existing) {
      if (existing.state === "waiting") this.dialNow(existing);
      return;
    }
    const target = new DialTarget(host, port, opts.maxRetries ?? this.defaults.maxRetries, this.defaults.backoff, opts.firstContactTimeout);
    this.targets.set(target.key, target);
    this.dialNow(target);
  }

  /** Stops keeping the link; returns the target so its link can be closed. */
  forget(host: string, port: number): DialTarget | undefined {
    const target = this.targets.get(dialKey(host, port));
    if (target) this.targets.delete(target.key);
    return target;
  }

  list(): Array<{ host: string; port: number; state: string; address?: string; failures: number; unresponsive: number }> {
    return [...this.targets.values()].map((t) => ({ host: t.host, port: t.port, state: t.state, address: t.address, failures: t.failures, unresponsive: t.unresponsive }));
  }

  /** The handshake on the target's link succeeded. */
  opened(target: DialTarget, address: string): void {
    target.state = "connected";
    target.address = address;
    target.failures = 0;
    target.backoff.reset();
    target.firstContactTimeout = undefined;
  }

  /** The target's link closed: decide whether, and when, to dial again. */
  linkClosed(target: DialTarget, code: number, reason: string, hadSession: boolean): void {
    if (!this.isCurrent(target)) return;
    if (code === CloseCode.DUPLICATE) {
      target.state = "parked";
      return;
    }
    if (!hadSession) target.failures++;
    if (isPermanentRefusal(code) || target.outOfRetries) {
      target.state = "failed";
      this.targets.delete(target.key);
      this.hooks.failed({ host: target.host, port: target.port, code, reason, final: true });
      return;
    }
    if (!hadSession) this.hooks.failed({ host: target.host, port: target.port, code, reason, final: false });
    target.state = "waiting";
    // This node dropped it for leaving requests unanswered: not at once again (a growing wait of its own).
    const delay = code === CloseCode.UNRESPONSIVE ? Math.max(target.backoff.next(), unresponsivePenalty(++target.unresponsive, this.defaults.unresponsivePenalty)) : target.backoff.next();
    target.retry = this.timers.setTimeout(() => this.dialNow(target), delay);
  }

  /** The server at host:port was forgiven one drop as unresponsive: its next such wait is one step shorter. */
  forgiveUnresponsive(host: string, port: number): void {
    const target = this.targets.get(dialKey(host, port));
    if (target && target.unresponsive > 0) target.unresponsive--;
  }

  /** A node's link dropped: parked addresses of it (or of an unknown node) get their turn. */
  unpark(address: string): void {
    for (const target of this.targets.values()) {
      // `address` is unknown when the other end refused the duplicate before its pong told us who it is.
      if (target.state === "parked" && (target.address === address || target.address === undefined)) this.dialNow(target);
    }
  }

  /**
   * No open transport of this node dials addresses any more (every one that
   * did was closed; a closed transport does not open again): every target is
   * given up, its redial cancelled, and reported as a final failure. Kept,
   * they retried with backoff for ever, each attempt failing at once.
   */
  dropAll(reason: string): void {
    for (const target of [...this.targets.values()]) {
      if (target.retry !== undefined) this.timers.clearTimeout(target.retry);
      target.retry = undefined;
      target.state = "failed";
      this.targets.delete(target.key);
      this.hooks.failed({ host: target.host, port: target.port, code: CloseCode.GOING_AWAY, reason, final: true });
    }
  }

  close(): void {
    this.closed = true;
    this.targets.clear();
  }

  private isCurrent(target: DialTarget): boolean {
    return !this.closed && this.targets.get(target.key) === target;
  }

  private dialNow(target: DialTarget): void {
    // A hurried redial (connect, going online) cancels the scheduled one: it would dial a second link later.
    if (target.retry !== undefined) this.timers.clearTimeout(target.retry);
    target.retry = undefined;
    if (!this.isCurrent(target)) return;
    target.state = "connecting";
    this.hooks.open(target);
  }
}
