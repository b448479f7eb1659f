/**
 * The last minutes of a server, for its status page: every `intervalMs` a
 * sample of the node's own counters (the ones /metrics exposes) as rates and
 * levels, kept in a bounded ring. The page asks for the samples newer than
 * the last one it drew, so each poll carries a few hundred bytes.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { type Clock, systemClock, TimerGroup } from "../base/clock.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { ToolDb } from "../node/tooldb.js";

export const STATUS_HISTORY_DEFAULTS = { intervalMs: 2_000, capacity: 300 };

/** One interval of a server; rates are per second over the interval that ends at `t`. */
export interface StatusSample {
  /** End of the interval (ms since the epoch, the node's clock). */
  t: number;
  /** Records received in puts (put and crdtPut messages) and sent in them (one per peer). */
  putsIn: number;
  putsOut: number;
  /** Verified links at `t`, by "kind/transport" (client/websocket, server/hyperswarm...). */
  links: Record<string, number>;
  /** Refusals per second in the interval, by code. */
  refusals: Record<string, number>;
  /** Server sync: records fetched and pushed per second, catch-ups running, keys listed by peers and not yet fetched. */
  syncFetched: number;
  syncPushed: number;
  syncRunning: number;
  syncBacklog: number;
  /** Event-loop delay over the interval, ms. */
  loopP50: number;
  loopP99: number;
}

export interface StatusHistoryOptions {
  intervalMs?: number;
  /** Samples kept (default 300: ten minutes at 2 s). */
  capacity?: number;
  clock?: Clock;
}

const PUT_TYPES = ["put", "crdtPut"];

function sumOf(map: ReadonlyMap<string, number>, types: readonly string[]): number {
  return types.reduce((n, type) => n + (map.get(type) ?? 0), 0);
}

export class StatusHistory {
  private readonly samples: StatusSample[] = [];
  private readonly timers: TimerGroup;
  private readonly intervalMs: number;
  private readonly capacity: number;
  private readonly clock: Clock;
  private readonly refusals = new Map<string, number>();
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private last: { t: number; putsIn: number; putsOut: number; fetched: number; pushed: number } | undefined;
  private stopInterval: (() => void) | undefined;
  private unhook: (() => void) | undefined;
  private readonly onRefused = (event: RefusalEvent) => this.refusals.set(event.code, (this.refusals.get(event.code) ?? 0) + (event.count ?? 1));

  constructor(
    private readonly db: ToolDb,
    options: StatusHistoryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? STATUS_HISTORY_DEFAULTS.intervalMs;
    this.capacity = options.capacity ?? STATUS_HISTORY_DEFAULTS.capacity;
    this.clock = options.clock ?? systemClock;
    this.timers = new TimerGroup(this.clock);
  }

  /** Starts sampling; idempotent. Stops by itself when the node closes (a closed node is not sampled). */
  start(): void {
    if (this.stopInterval || this.db.isClosed) return;
    this.unhook = this.db.onClose(() => this.stop());
    this.db.on("refused", this.onRefused);
    this.loop.enable();
    this.last = this.totals();
    this.stopInterval = this.timers.every(this.intervalMs, () => this.sample());
  }

  /** Stops sampling and lets go of the node; idempotent. Samples taken stay readable. */
  stop(): void {
    if (!this.stopInterval) return;
    this.stopInterval();
    this.unhook?.();
    this.timers.clearAll();
    this.loop.disable();
    this.db.off("refused", this.onRefused);
  }

  /** Samples newer than `t` (all of them without it), oldest first. */
  since(t = -Infinity): StatusSample[] {
    return this.samples.filter((s) => s.t > t);
  }

  private totals() {
    const { traffic } = this.db.network;
    const sync = this.db.syncProgress;
    return { t: this.clock.now(), putsIn: sumOf(traffic.received, PUT_TYPES), putsOut: sumOf(traffic.sent, PUT_TYPES), fetched: sync.recordsFetched, pushed: sync.recordsPushed };
  }

  private sample(): void {
    const now = this.totals();
    const before = this.last ?? now;
    const seconds = Math.max((now.t - before.t) / 1000, 0.001);
    const rate = (a: number, b: number) => Math.max(0, a - b) / seconds;
    const links: Record<string, number> = {};
    for (const s of this.db.network.peers) {
      const key = `${s.isServer ? "server" : "client"}/${s.connection.info.transport ?? "other"}`;
      links[key] = (links[key] ?? 0) + 1;
    }
    const refusals: Record<string, number> = {};
    for (const [code, n] of this.refusals) refusals[code] = n / seconds;
    this.refusals.clear();
    const sync = this.db.syncProgress;
    // The histogram's percentiles are NaN-free only once it saw a delay; an idle loop reads as its resolution.
    const ms = (ns: number) => (Number.isFinite(ns) && ns > 0 ? ns / 1e6 : 0);
    this.samples.push({
      t: now.t,
      putsIn: rate(now.putsIn, before.putsIn),
      putsOut: rate(now.putsOut, before.putsOut),
      links,
      refusals,
      syncFetched: rate(now.fetched, before.fetched),
      syncPushed: rate(now.pushed, before.pushed),
      syncRunning: sync.running,
      syncBacklog: Math.max(0, sync.keysListed - sync.keysFetched),
      loopP50: ms(this.loop.percentile(50)),
      loopP99: ms(this.loop.percentile(99)),
    });
    this.loop.reset();
    if (this.samples.length > this.capacity) this.samples.splice(0, this.samples.length - this.capacity);
    this.last = now;
  }
}
