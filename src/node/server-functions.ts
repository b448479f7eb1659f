import { TimerGroup, systemClock, type Clock, type TimerHandle } from "../base/clock.js";
import { ErrorCode } from "../base/errors.js";
import { TokenBucket } from "../limits/rate-limiter.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { ServerFunction } from "./node-types.js";

/** How often one link may call a server function (`addServerFunction`'s third argument). */
export interface ServerFunctionOptions {
  /** Calls per second one link may make (token-bucket refill). Default: unbounded. */
  callsPerSecond?: number;
  /** Calls one link may make at once (bucket size). Default: max(1, callsPerSecond). */
  burst?: number;
}

/**
 * One link's over-rate calls make at most one `refused` event per this many
 * ms: the first at once, those after it within the period together (the
 * event's `count`) when the period ends. A flood at the message rate is then
 * one event (and log line) a second per link, and the counts add up to
 * every call refused.
 */
export const RATE_REFUSAL_REPORT_MS = 1000;

/**
 * The text a call over its link's rate is answered with (`functionReturn`
 * code `ERR`, as every failed call is: tool-db 2.6.6 knows no other code);
 * it starts with the stable code RATE_LIMITED.
 */
export function rateLimitedReturn(name: string, rate: FunctionRate): string {
  return `${ErrorCode.RATE_LIMITED}: ${name.slice(0, 64)} may be called ${rate.callsPerSecond}/s (burst ${rate.burst}) per link`;
}

/** A checked rate (api-arguments.ts `functionRate`). */
export interface FunctionRate {
  callsPerSecond: number;
  burst: number;
}

/** A link as the rate sees it: any object kept while the link lives (a PeerSession), and its peer's id for reports. */
export interface CallingLink {
  readonly clientId?: string;
}

/** The node, as its server functions use it (read when a call comes, not at construction). */
export interface FunctionsHost {
  readonly options: { readonly clock?: Clock };
  /** Reports a refusal (the node's `refused` event). */
  refused(event: RefusalEvent): void;
}

/** One link's buckets and its over-rate calls not reported yet. */
interface LinkCalls {
  readonly buckets: Map<string, TokenBucket>;
  /** When its last `refused` event was emitted. */
  reportedAt: number;
  /** Calls refused since then and not reported, by function name (only registered, rated names). */
  readonly held: Map<string, number>;
  /** Reports `held` when the period ends. */
  timer?: TimerHandle;
}

/**
 * The node's server functions by name (a Map, as tool-db's `functions`),
 * with each one's per-link call rate: every link has a token bucket per
 * rated function, kept with the link's session (gone with it). A call over
 * the rate is reported as a `refused` event (`RATE_LIMITED`), at most one
 * per link per RATE_REFUSAL_REPORT_MS with the count of calls it stands for.
 */
export class ServerFunctions extends Map<string, ServerFunction> {
  private readonly rates = new Map<string, FunctionRate>();
  private readonly links = new WeakMap<object, LinkCalls>();
  /** Timers of the reports waiting (made on the first: the host's options are read late). */
  private timers: TimerGroup | undefined;

  constructor(private readonly host: FunctionsHost) {
    super();
  }

  private get clock(): Clock {
    return this.host.options.clock ?? systemClock;
  }

  /** Registers `fn` under `name` (replacing one there, and its rate). */
  add(name: string, fn: ServerFunction, rate: FunctionRate | undefined): void {
    this.set(name, fn);
    if (rate) this.rates.set(name, rate);
    else this.rates.delete(name);
  }

  /** The rate of a rated function (undefined: unbounded). */
  rateOf(name: string): Readonly<FunctionRate> | undefined {
    return this.rates.get(name);
  }

  /** Takes one call of `name` from the bucket of `link`: false when that link is over the function's rate. */
  admit(name: string, link: object): boolean {
    const rate = this.rates.get(name);
    if (!rate) return true;
    const mine = this.calls(link);
    let bucket = mine.buckets.get(name);
    if (!bucket || bucket.rate !== rate.callsPerSecond || bucket.burst !== rate.burst) {
      mine.buckets.set(name, (bucket = new TokenBucket(rate.callsPerSecond, rate.burst, () => this.clock.now())));
    }
    return bucket.tryTake();
  }

  /**
   * A call of `name` that `admit` refused: returns the text to answer it
   * with, and reports it, at once if the link's last report is a period
   * old, else with the others of the period when it ends.
   */
  overRate(name: string, link: CallingLink & object): string {
    const rate = this.rates.get(name);
    const text = rate ? rateLimitedReturn(name, rate) : `${ErrorCode.RATE_LIMITED}: ${name.slice(0, 64)}`;
    const mine = this.calls(link);
    const now = this.clock.now();
    if (mine.held.size === 0 && now - mine.reportedAt >= RATE_REFUSAL_REPORT_MS) {
      mine.reportedAt = now;
      this.host.refused({ code: ErrorCode.RATE_LIMITED, reason: `server function call over its rate: ${text}`, peer: link.clientId, count: 1 });
      return text;
    }
    mine.held.set(name, (mine.held.get(name) ?? 0) + 1);
    this.timers ??= new TimerGroup(this.clock);
    mine.timer ??= this.timers.setTimeout(() => this.flush(link, mine), Math.max(0, mine.reportedAt + RATE_REFUSAL_REPORT_MS - now));
    return text;
  }

  /** Stops the timers of pending reports (the node closes: its events are over); idempotent. */
  close(): void {
    this.timers?.clearAll();
  }

  /** Reports a link's held calls as one event: `count` calls, the reason naming each function's share. */
  private flush(link: CallingLink, mine: LinkCalls): void {
    mine.timer = undefined;
    if (mine.held.size === 0) return;
    const now = this.clock.now();
    let count = 0;
    const each: string[] = [];
    for (const [name, n] of mine.held) {
      count += n;
      each.push(`${name.slice(0, 64)} ×${n}`);
    }
    mine.held.clear();
    const since = Math.max(0, now - mine.reportedAt) / 1000;
    mine.reportedAt = now;
    const reason = `${count} server function call${count === 1 ? "" : "s"} over ${count === 1 ? "its" : "their"} rate in ${since.toFixed(1)} s (${each.join(", ")}), reported together: one report a second per link`;
    this.host.refused({ code: ErrorCode.RATE_LIMITED, reason, peer: link.clientId, count });
  }

  private calls(link: object): LinkCalls {
    let mine = this.links.get(link);
    if (!mine) this.links.set(link, (mine = { buckets: new Map(), reportedAt: -Infinity, held: new Map() }));
    return mine;
  }
}
