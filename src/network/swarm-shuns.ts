/**
 * How long a non-announcing Hyperswarm client keeps away a peer it dialed
 * that did not finish the handshake (HANDSHAKE_TIMEOUT), left what the
 * client asked unanswered (UNRESPONSIVE), or said it is no server.
 *
 * Only servers announce a topic: hyperswarm dials whatever a lookup returns
 * (up to its `maxPeers` slots), and announcers that answered as clients, or
 * never answered, held every slot, so a server announced later was never
 * reached (outside check: 72 such announcers). Such peers are banned in the
 * swarm for a while (neither dialed nor taken).
 *
 * The wait was a flat 60 s: one handshake read late on a loaded machine
 * (past the 5 s default) kept an honest server away for a minute, the only
 * server of a small deployment. It is now a backoff a peer: `first` ms for
 * a first offence, doubling with each offence that comes within `forgive`
 * ms of the one before, up to `max`; a peer with no offence for `forgive`
 * ms starts again from `first`. A stranger that never finishes a handshake
 * reaches `max` after log2(max / first) + 1 dials (5 with the defaults)
 * and is dialed once per `max` + handshake timeout after that, as before.
 * A peer that says it is no server has no business announcing: it is kept
 * off for `max` at once.
 */
import type { PeerInfo } from "hyperswarm";
import { LruMap } from "../base/bounded-set.js";
import type { TimerHandle } from "../base/clock.js";
import type { SwarmBans } from "./swarm-bans.js";

export interface ShunTimings {
  /** The first offence's wait (ms). */
  first: number;
  /** The longest wait (ms). */
  max: number;
  /** A peer with no offence for this long (ms) is forgiven: its next wait is `first` again. */
  forgive: number;
}

export const DEFAULT_SHUN_TIMINGS: ShunTimings = { first: 4_000, max: 60_000, forgive: 10 * 60_000 };

/** Swarm keys whose offences are remembered (about; LruMap keeps up to twice this). */
const REMEMBERED_PEERS = 1024;

export interface ShunClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export class SwarmShuns {
  /** Offences by swarm key: how many in a row, and when the last was. */
  private readonly offences = new LruMap<string, { count: number; lastAt: number }>(REMEMBERED_PEERS);
  /** Peers shunned now, and the timer that lifts the shun. */
  private readonly active = new Map<PeerInfo, TimerHandle>();

  constructor(
    private readonly bans: SwarmBans,
    private readonly timings: ShunTimings,
    private readonly clock: ShunClock,
    /** A shun was lifted (e.g. look the topic up again, so the peer is dialed soon). */
    private readonly lifted: () => void = () => undefined,
  ) {}

  /** An offence of `info`: banned for its next wait (`severe`: the longest at once). Returns the wait (ms). */
  shun(info: PeerInfo, severe = false): number {
    const { first, max, forgive } = this.timings;
    const key = info.publicKey.toString("hex");
    const now = this.clock.now();
    const past = this.offences.get(key);
    const count = past && now - past.lastAt < forgive ? past.count + 1 : 1;
    const ms = severe ? max : Math.min(max, first * 2 ** Math.min(count - 1, 30));
    // A severe offence counts as reaching the longest wait: the next one waits `max` too.
    this.offences.set(key, { count: severe ? Math.max(count, Math.ceil(Math.log2(max / Math.max(first, 1))) + 1) : count, lastAt: now });
    const running = this.active.get(info);
    if (running !== undefined) this.clock.clearTimeout(running);
    else this.bans.hold(info);
    this.active.set(
      info,
      this.clock.setTimeout(() => {
        this.active.delete(info);
        this.bans.release(info);
        this.lifted();
      }, ms),
    );
    return ms;
  }

  /** Whether `info` is shunned now. */
  shunned(info: PeerInfo): boolean {
    return this.active.has(info);
  }

  /** The swarm is closing: every shun lifted, nothing remembered. */
  clear(): void {
    for (const [info, timer] of this.active) {
      this.clock.clearTimeout(timer);
      this.bans.release(info);
    }
    this.active.clear();
    this.offences.clear();
  }
}
