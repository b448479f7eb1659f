/**
 * Plumtree's recovery half: record hashes announced lazily (IHAVE) that
 * have not arrived yet. Each waits `graftTimeout` for the eager copy; then
 * the first announcer still linked is asked for it with a GRAFT (which also
 * puts that link back on the tree), and the next announcer `graftRetry`
 * later if it still has not come. Due hashes are grouped per announcer so
 * that a broken branch costs one GRAFT frame per peer, not one per record.
 */
import type { TimerGroup, TimerHandle } from "../../base/clock.js";
import type { PeerSession } from "../../network/peer-session.js";

/** Announcers remembered per missing hash. */
const MAX_ANNOUNCERS = 8;

interface Missing {
  due: number;
  announcers: PeerSession[];
}

export interface RepairTimings {
  graftTimeout: number;
  graftRetry: number;
}

export class TreeRepair {
  private readonly missing = new Map<string, Missing>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  constructor(
    private readonly timers: TimerGroup,
    /** Monotonic time (the due-times arm the timer). */
    private readonly now: () => number,
    private readonly timings: RepairTimings,
    /** Most hashes waited for at once; announcements beyond are left to anti-entropy. */
    private readonly capacity: number,
    /** Asks `peer` for `hashes` and grafts the link. */
    private readonly graft: (peer: PeerSession, hashes: string[]) => void,
  ) {}

  get size(): number {
    return this.missing.size;
  }

  /** `from` announced `hash`, which this node does not have. */
  announced(hash: string, from: PeerSession): void {
    let entry = this.missing.get(hash);
    if (!entry) {
      if (this.missing.size >= this.capacity) return;
      entry = { due: this.now() + this.timings.graftTimeout, announcers: [] };
      this.missing.set(hash, entry);
      this.schedule(entry.due);
    }
    if (entry.announcers.length < MAX_ANNOUNCERS && !entry.announcers.includes(from)) entry.announcers.push(from);
  }

  /** The record arrived (by any path): stop waiting for it. */
  arrived(hash: string): void {
    this.missing.delete(hash);
  }

  /** A link closed: its announcements are worthless. */
  unlinked(peer: PeerSession): void {
    for (const entry of this.missing.values()) {
      const i = entry.announcers.indexOf(peer);
      if (i >= 0) entry.announcers.splice(i, 1);
    }
  }

  close(): void {
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.missing.clear();
  }

  private schedule(at: number): void {
    if (at >= this.timerAt) return;
    this.timers.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.timers.setTimeout(() => this.fire(), Math.max(0, at - this.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    const asks = new Map<PeerSession, string[]>();
    let next = Infinity;
    for (const [hash, entry] of this.missing) {
      if (entry.due > now) {
        next = Math.min(next, entry.due);
        continue;
      }
      let peer = entry.announcers.shift();
      while (peer && peer.connection.closed) peer = entry.announcers.shift();
      if (!peer) {
        this.missing.delete(hash);
        continue;
      }
      let list = asks.get(peer);
      if (!list) asks.set(peer, (list = []));
      list.push(hash);
      entry.due = now + this.timings.graftRetry;
      next = Math.min(next, entry.due);
    }
    if (next < Infinity) this.schedule(next);
    for (const [peer, hashes] of asks) this.graft(peer, hashes);
  }
}
