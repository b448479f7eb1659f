/**
 * What a node's close() waits for besides its own parts: the writes callers
 * began before it (for a bounded time), and the close hooks of what wraps
 * the node (a DHTServer's or DHTClient's discovery), each run once.
 */
import { type Clock, systemClock } from "../base/clock.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";

/** How long close() waits for writes begun before it; past that the stores close and those writes reject with CLOSED. */
export const CLOSE_WRITES_MS = 5000;

export type CloseHook = () => Promise<void> | void;

export class Closing {
  private readonly writes = new Set<Promise<void>>();
  private readonly hooks = new Set<CloseHook>();
  private began = false;
  private cut: () => void = () => undefined;
  private readonly cutShort = new Promise<void>((resolve) => (this.cut = resolve));

  constructor(
    private readonly log: LogFn,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Tracks `write` until it settles (its outcome stays the caller's); returns it. */
  track<T>(write: Promise<T>): Promise<T> {
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    this.writes.add(settled);
    void settled.then(() => this.writes.delete(settled));
    return write;
  }

  /** close() began: start-up steps waiting in `unlessClosed` stop waiting. */
  begin(): void {
    this.cut();
  }

  /**
   * `step`, unless close() begins first: then CLOSED at once, and `step` is
   * left to settle on its own (its outcome unheard). So a start-up step that
   * never ends (a store that never becomes ready) does not hold close().
   */
  unlessClosed<T>(step: Promise<T>, what: string): Promise<T> {
    const closed = this.cutShort.then((): never => {
      throw new ToolDbError(ErrorCode.CLOSED, `${what}: close() came first`);
    });
    return Promise.race([step, closed]);
  }

  /** Adds a hook run once when close begins (close waits for it); returns what removes it. Once close began, it runs at once. */
  add(hook: CloseHook): () => void {
    if (this.began) {
      void this.run(hook);
      return () => undefined;
    }
    this.hooks.add(hook);
    return () => void this.hooks.delete(hook);
  }

  /** Runs every hook once; a hook that throws is logged, never fails the close. */
  async runHooks(): Promise<void> {
    this.began = true;
    const hooks = [...this.hooks];
    this.hooks.clear();
    await Promise.all(hooks.map((hook) => this.run(hook)));
  }

  /** Resolves once every tracked write settled, or after `ms` (on the node's clock). */
  async drain(ms = CLOSE_WRITES_MS): Promise<void> {
    if (this.writes.size === 0) return;
    await this.within(Promise.all([...this.writes]), ms);
    if (this.writes.size > 0) this.log("close: %d write(s) still running after %d ms; they reject with CLOSED", this.writes.size, ms);
  }

  /** Resolves once `work` settled (its outcome stays the caller's), or after `ms` (on the node's clock). */
  async within(work: Promise<unknown>, ms = CLOSE_WRITES_MS): Promise<void> {
    let timer: ReturnType<Clock["setTimeout"]> | undefined;
    const bound = new Promise<void>((resolve) => (timer = this.clock.setTimeout(resolve, ms)));
    await Promise.race([work.catch(() => undefined), bound]);
    this.clock.clearTimeout(timer);
  }

  private async run(hook: CloseHook): Promise<void> {
    try {
      await hook();
    } catch (err) {
      this.log("close hook failed: %s", errorText(err));
    }
  }
}
