/**
 * The `status` server function of `tooldb-dht serve`, cost-bounded: any
 * linked peer may call it (the status page does, every 2 s), and a whole
 * answer (the server list and ten minutes of samples) is about 120 KB, so
 * a stranger calling it in a loop made the server build and send that as
 * fast as it could (found by an outside check). Now one link may call it
 * STATUS_CALLS.callsPerSecond times a second (over that: `ERR`
 * "RATE_LIMITED: …", counted in `refused` events at most one a second per
 * link, see ToolDb.addServerFunction),
 * and what was built is answered again to every caller for
 * STATUS_CACHE_MS.
 */
import type { ServerFunctionOptions } from "../node/server-functions.js";
import type { ToolDb } from "../node/tooldb.js";
import type { StatusHistory } from "../metrics/status-history.js";
import { type NodeStatus, nodeStatus } from "./status.js";

/**
 * Calls of one link: the page asks every 2 s and once more on each
 * (re)connect, so a burst of 4 and 1 a second leave it room to spare.
 */
export const STATUS_CALLS: Readonly<Required<ServerFunctionOptions>> = { callsPerSecond: 1, burst: 4 };

/** How long a built status is answered again, to every caller (the page polls every 2 s). */
export const STATUS_CACHE_MS = 1000;

/** Answers kept per build at most, by `since` (a caller that varies it gets a fresh history slice, never a rebuild). */
const MAX_SINCE_KEYS = 16;

/** Registers the `status` server function on `db` (what `serve` does). */
export function addStatusFunction(db: ToolDb, dhtFound: Pick<ReadonlySet<string>, "has"> & Iterable<string>, history?: StatusHistory): StatusCache {
  const cache = new StatusCache(() => nodeStatus(db, dhtFound), history, () => db.now());
  db.addServerFunction("status", (call) => cache.get((call as { since?: unknown } | undefined)?.since), STATUS_CALLS);
  return cache;
}

/**
 * The status without history, built at most once per STATUS_CACHE_MS and
 * shared; each answer adds the samples newer than the caller's `since`
 * (the same `since` gets the same answer until the next build).
 */
export class StatusCache {
  private builtAt = -Infinity;
  private base: NodeStatus | undefined;
  private readonly answers = new Map<number | undefined, NodeStatus>();
  /** Times the status was built (for tests and debugging). */
  builds = 0;

  constructor(
    private readonly build: () => NodeStatus,
    private readonly history: StatusHistory | undefined,
    private readonly now: () => number,
    private readonly ttlMs = STATUS_CACHE_MS,
  ) {}

  get(since: unknown): NodeStatus {
    const now = this.now();
    if (!this.base || now - this.builtAt >= this.ttlMs || now < this.builtAt) {
      this.base = this.build();
      this.builtAt = now;
      this.builds++;
      this.answers.clear();
    }
    const key = typeof since === "number" ? since : undefined;
    let answer = this.answers.get(key);
    if (!answer) {
      if (this.answers.size >= MAX_SINCE_KEYS) this.answers.delete(this.answers.keys().next().value);
      answer = { ...this.base, history: this.history?.since(key) ?? [] };
      this.answers.set(key, answer);
    }
    return answer;
  }
}
