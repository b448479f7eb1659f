import { TimerGroup, type Clock } from "../base/clock.js";
import type { Discovery } from "./discovery.js";

export interface DhtWatchOptions {
  /** Warn when the routing table stays empty this long (ms). */
  silentAfterMs: number;
  /** How often the routing table is looked at (ms). Default a quarter of `silentAfterMs`, at most 1000. */
  checkEveryMs?: number;
  clock?: Clock;
}

export interface DhtWatchHooks {
  /** No DHT node has answered for `ms` (offline, UDP blocked, bootstrap down). */
  silent(ms: number): void;
  /** Nodes answer again after a `silent` report. */
  answered(nodes: number): void;
}

/** DHT nodes this node has heard from (its routing table); bootstrap addresses only count once they answer. */
export function dhtNodeCount(discovery: Discovery): number {
  return discovery.destroyed ? 0 : discovery.dht.toJSON().nodes.length;
}

/**
 * Watches whether any DHT node answers. bittorrent-dht reports 'ready' even
 * when no packet ever comes back, so an offline server would otherwise
 * announce into the void without a word; this tells the operator.
 */
export class DhtWatch {
  private readonly timers: TimerGroup;
  private readonly clock: Pick<Clock, "now">;
  private silentSince: number;
  private warned = false;
  private readonly stopTicks: () => void;

  constructor(
    private readonly discovery: Discovery,
    private readonly opts: DhtWatchOptions,
    private readonly hooks: DhtWatchHooks,
  ) {
    this.timers = new TimerGroup(opts.clock);
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.silentSince = this.clock.now();
    // Looked at several times per `silentAfterMs`: a tick a hair early (timers against the wall clock) must not put the warning off by a whole period.
    const every = opts.checkEveryMs ?? Math.min(1000, Math.max(10, opts.silentAfterMs / 4));
    this.stopTicks = this.timers.every(Math.min(every, opts.silentAfterMs), () => this.check());
  }

  /** Nodes in the routing table now. */
  get nodes(): number {
    return dhtNodeCount(this.discovery);
  }

  private check(): void {
    const nodes = this.nodes;
    const now = this.clock.now();
    if (nodes > 0) {
      this.silentSince = now;
      if (this.warned) {
        this.warned = false;
        this.hooks.answered(nodes);
      }
    } else if (!this.warned && now - this.silentSince >= this.opts.silentAfterMs) {
      this.warned = true;
      this.hooks.silent(now - this.silentSince);
    }
  }

  stop(): void {
    this.stopTicks();
    this.timers.clearAll();
  }
}
