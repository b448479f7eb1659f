/**
 * The ids a reconciliation run still has to fetch (or push), worked off in
 * batches by a few concurrent requests while the run goes on with its next
 * rounds, so verification never waits for a round trip or a range scan.
 * Bounded: a round that would queue more than `maxQueued` ids waits for
 * room, so memory does not grow with the store (each id is asked for once
 * per frame).
 */
import { ErrorCode, ToolDbError } from "../../base/errors.js";

export class IdQueue {
  private ids: string[] = [];
  private readonly workers = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private roomWaiters: (() => void)[] = [];

  /**
   * @param fetchBatch fetches and merges (or pushes) the records behind `ids`; resolves the ids to ask for again
   *   (those the peer could not fit in its reply); a rejection ends the queue.
   */
  constructor(
    private readonly fetchBatch: (ids: string[]) => Promise<string[]>,
    private readonly batchSize: number,
    private readonly concurrency: number,
    private readonly maxQueued: number,
  ) {}

  /** Queues `ids`; resolves once the queue has room again. Rejects with the first failure. */
  async add(ids: string[]): Promise<void> {
    this.throwIfFailed();
    for (const id of ids) this.ids.push(id);
    this.startWorkers();
    while (this.ids.length > this.maxQueued && !this.failure) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    this.throwIfFailed();
  }

  /** Resolves when every queued id was fetched; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.workers.size > 0) await Promise.all(this.workers);
    this.throwIfFailed();
  }

  private startWorkers(): void {
    while (this.workers.size < this.concurrency && this.workers.size * this.batchSize < this.ids.length) {
      const worker = this.work().finally(() => this.workers.delete(worker));
      this.workers.add(worker);
    }
  }

  private async work(): Promise<void> {
    try {
      while (this.ids.length > 0 && !this.failure) {
        // splice, not two slices: the queue is not copied for every batch taken.
        const batch = this.ids.splice(0, this.batchSize);
        if (this.ids.length <= this.maxQueued) this.wake();
        for (const id of await this.fetchBatch(batch)) this.ids.push(id);
      }
    } catch (error) {
      this.failure ??= { error };
      this.wake();
    }
  }

  private wake(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/**
 * The ids of a fetch to ask for again: those the peer listed under `more`
 * (it could not fit them). Each answer must shorten the list, or the run
 * fails: a peer that lists every id again (with records nobody asked for,
 * or none) would otherwise keep the run asking for ever, and one whose
 * unanswered ids were dropped would end it as complete without them.
 */
export function askAgain(asked: readonly string[], more: readonly string[] | undefined): string[] {
  if (!more || more.length === 0) return [];
  const wanted = new Set(asked);
  const again = more.filter((id) => wanted.delete(id));
  if (again.length >= asked.length) throw new ToolDbError(ErrorCode.SYNC_FAILED, `fetch made no progress: the peer answered none of ${asked.length} ids`);
  return again;
}
