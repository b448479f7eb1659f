import { ErrorCode } from "../base/errors.js";
import { TokenBucket } from "../limits/rate-limiter.js";
import type { ServerFunction } from "./node-types.js";

/** How often one link may call a server function (`addServerFunction`'s third argument). */
export interface ServerFunctionOptions {
  /** Calls per second one link may make (token-bucket refill). Default: unbounded. */
  callsPerSecond?: number;
  /** Calls one link may make at once (bucket size). Default: max(1, callsPerSecond). */
  burst?: number;
}

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

/**
 * The node's server functions by name (a Map, as tool-db's `functions`),
 * with each one's per-link call rate: every link has a token bucket per
 * rated function, kept with the link's session (gone with it).
 */
export class ServerFunctions extends Map<string, ServerFunction> {
  private readonly rates = new Map<string, FunctionRate>();
  private readonly buckets = new WeakMap<object, Map<string, TokenBucket>>();

  constructor(private readonly now: () => number) {
    super();
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
    let mine = this.buckets.get(link);
    if (!mine) this.buckets.set(link, (mine = new Map()));
    let bucket = mine.get(name);
    if (!bucket || bucket.rate !== rate.callsPerSecond || bucket.burst !== rate.burst) {
      mine.set(name, (bucket = new TokenBucket(rate.callsPerSecond, rate.burst, this.now)));
    }
    return bucket.tryTake();
  }
}
