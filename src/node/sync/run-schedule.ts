/**
 * When reconciliation runs on a server link: at once whenever it is asked
 * for (the link opened, was proven, or came back from a silence without
 * closing), never two at once on a link (one asked for during a run runs
 * right after it), and, when a run ends incomplete on a link that stays
 * open (a request timed out, the peer refused), again after a backoff: a
 * link never stays unreconciled until it happens to be replaced.
 */
import { Backoff } from "../../base/backoff.js";
import type { TimerGroup, TimerHandle } from "../../base/clock.js";
import type { PeerSession } from "../../network/peer-session.js";

/** Retry delays after an incomplete run: 1 s doubling up to a minute (with jitter). */
const RETRY_INITIAL_MS = 1000;
const RETRY_MAX_MS = 60_000;

interface LinkState {
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
    private readonly random?: () => number,
  ) {}

  /** Reconciles with `session` now, or right after the run in progress there. */
  request(session: PeerSession): void {
    if (this.gone(session)) return;
    let state = this.links.get(session);
    if (!state) {
      state = { running: false, again: false, retry: new Backoff({ initial: RETRY_INITIAL_MS, max: RETRY_MAX_MS, random: this.random }), timer: undefined };
      this.links.set(session, state);
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
          this.request(session);
        } else if (complete) link.retry.reset();
        else link.timer = this.timers.setTimeout(() => this.request(session), link.retry.next());
      });
  }

  private gone(session: PeerSession): boolean {
    return this.isClosed() || session.connection.closed;
  }
}
