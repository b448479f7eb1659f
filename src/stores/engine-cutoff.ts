/**
 * What a store's close() gives up on once its bound passed: an engine open
 * that has not ended, and engine calls in flight that have not settled (a
 * stalled disk, an engine bug). An engine call cannot be interrupted (a
 * LevelDB call is a job on libuv's pool), so giving up means: the callers
 * stop waiting for it and reject with CLOSED at once, no further call
 * reaches the engine, and the engine's own close runs once its calls end.
 */
import type { Clock } from "../base/clock.js";
import { type ToolDbError, isToolDbError } from "../base/errors.js";

/**
 * How long close() waits for the engine (on the host's clock): an open that
 * has not ended, then the operations submitted before close and the
 * engine's own close. A LevelDB call is a job on libuv's pool and cannot be
 * interrupted: past this, close() resolves, what still waits for the engine
 * (its open, a get, a batch, an iterator's read) rejects with CLOSED, nothing
 * more reaches it, and the database is closed once those calls end (its lock
 * is held until then).
 */
export const CLOSE_ENGINE_MS = 5000;

const ignore = () => undefined;

export class EngineCutoff {
  private reason: ToolDbError | undefined;
  private sever: (err: ToolDbError) => void = ignore;
  /** The callers of engine calls in flight (a set, not a race against `severed`: a race's reaction stays on it for good). */
  private readonly waiting = new Set<(err: ToolDbError) => void>();
  /** Rejects with the cut's error once close() gave up (what waits for the engine's open races it). */
  readonly severed: Promise<never>;

  constructor() {
    this.severed = new Promise<never>((_, reject) => (this.sever = reject));
    this.severed.catch(ignore); // unheard when nothing waits for the open
  }

  get isCut(): boolean {
    return this.reason !== undefined;
  }

  /** Gives up (once): every call in flight or made from now on rejects with `err`. */
  cut(err: ToolDbError): void {
    if (this.reason) return;
    this.reason = err;
    this.sever(err);
    for (const reject of this.waiting) reject(err);
    this.waiting.clear();
  }

  /** Throws the cut's error once cut: nothing reaches the engine after the cut. */
  check(): void {
    if (this.reason) throw this.reason;
  }

  /** Whether `err` is the cut's own error (a caller cut off, not an engine failure). */
  isCutError(err: unknown): boolean {
    return isToolDbError(err) && err === this.reason;
  }

  /**
   * `call`'s outcome, unless the cut comes first: then the cut's error at
   * once, and the call settles unheard (its rejection handled). Once cut,
   * `call` is not made.
   */
  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.reason) return Promise.reject(this.reason);
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      call().then(
        (value) => {
          this.waiting.delete(reject);
          resolve(value);
        },
        (err: unknown) => {
          this.waiting.delete(reject);
          reject(err); // after a cut: settles nothing (the caller had the cut's error)
        },
      );
    });
  }
}

/** Whether `work` settled within `ms` on `clock` (its outcome is left to the caller). */
export async function settledWithin(work: Promise<unknown>, clock: Clock, ms: number): Promise<boolean> {
  const ended = work.then(
    () => true,
    () => true,
  );
  let bound: ReturnType<Clock["setTimeout"]> | undefined;
  const late = new Promise<false>((resolve) => (bound = clock.setTimeout(() => resolve(false), ms)));
  const settled = await Promise.race([ended, late]);
  clock.clearTimeout(bound);
  return settled;
}
