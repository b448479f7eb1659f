/**
 * When reconciliation runs on a server link: at once whenever it is asked
 * for (the link opened, was proven, or came back from a silence without
 * closing), never two at once on a link (one asked for during a run runs
 * right after it), and, when a run ends incomplete on a link that stays
 * open (a request timed out, the peer refused), again after a backoff: a
 * link never stays unreconciled until it happens to be replaced. A run
 * that completes is followed by a refresh `refreshMs` later (±20 %), and
 * so on while the link stays open: what the relay lost on a stable link
 * (a frame a send budget dropped, an overflowing `ihave` queue, a record
 * refused for a while, a peer that died between relay and store) arrives
 * by the next refresh. On an idle link a refresh goes by the change feeds
 * and costs a request and a commit (change-sync.ts).
 */
import { Backoff } from "../../base/backoff.js";
import type { TimerGroup, TimerHandle } from "../../base/clock.js";
import type { PeerSession } from "../../network/peer-session.js";

/** Retry delays after an incomplete run: 1 s doubling up to a minute (with jitter). */
const RETRY_INITIAL_MS = 1000;
const RETRY_MAX_MS = 60_000;
/** A refresh comes `refreshMs` after a complete run, give or take this share: links made together do not refresh together. */
const REFRESH_JITTER = 0.2;
/** Refresh interval by default (ms): the `rangeSync.refreshMs` option. */
export const DEFAULT_REFRESH_MS = 60_000;

interface LinkState {
  /** Refreshed after a complete run: links we dialed; a run asked for once (`request`'s `once`) is not. */
  refresh: boolean;
  running: boolean;
  again: boolean;
  retry: Backoff;
  timer: TimerHandle | undefined;
}

export class RunSchedule {
  private readonly links = new WeakMap<PeerSession, LinkState>();

  constructor(
    /** Runs a reconciliation; resolves whether it ran to the end. */
    private readonly run: (session: PeerSession) => Promise<boolean>,
    private readonly timers: TimerGroup,
    private readonly isClosed: () => boolean,
    private readonly random: () => number = Math.random,
    /** Ms from a complete run to the next on the same link (0: none). */
    private readonly refreshMs = DEFAULT_REFRESH_MS,
  ) {}

  /**
   * Reconciles with `session` now, or right after the run in progress there.
   * `once`: until a run completes (retried after a backoff as any), with no
   * refresh after it, unless the link is also asked for without `once`.
   */
  request(session: PeerSession, once = false): void {
    if (this.gone(session)) return;
    let state = this.links.get(session);
    if (state && !once) state.refresh = true;
    if (!state) {
      state = { refresh: !once, running: false, again: false, retry: new Backoff({ initial: RETRY_INITIAL_MS, max: RETRY_MAX_MS, random: this.random }), timer: undefined };
      this.links.set(session, state);
      const link = state;
      // A link that closes takes its retry or refresh timer with it (the node's close clears them all).
      session.connection.once("close", () => {
        this.timers.clearTimeout(link.timer);
        link.timer = undefined;
      });
    }
    if (state.running) {
      state.again = true;
      return;
    }
    this.timers.clearTimeout(state.timer);
    state.timer = undefined;
    state.running = true;
    const link = state;
    void this.run(session)
      .catch(() => false)
      .then((complete) => {
        link.running = false;
        if (this.gone(session)) return;
        if (link.again) {
          link.again = false;
          this.request(session, !link.refresh);
        } else if (complete) {
          link.retry.reset();
          if (this.refreshMs > 0 && link.refresh) this.later(session, link, this.refreshMs * (1 + REFRESH_JITTER * (2 * this.random() - 1)));
        } else this.later(session, link, link.retry.next());
      });
  }

  private later(session: PeerSession, link: LinkState, ms: number): void {
    link.timer = this.timers.setTimeout(() => {
      link.timer = undefined;
      this.request(session, !link.refresh);
    }, Math.round(ms));
  }

  private gone(session: PeerSession): boolean {
    return this.isClosed() || session.connection.closed;
  }
}
