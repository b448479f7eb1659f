/**
 * Streams many writes into a store without awaiting each one: the storage
 * contract lets a store coalesce writes issued without awaiting (one LevelDB
 * batch for many, see BatchQueue), so a bulk job (an index rebuild) gets
 * batch speed through plain put/del. Memory stays bounded: writes are
 * gathered in steps of `step`, and a new step starts only once the step
 * before the previous one has settled (at most two steps in flight), so the
 * reader producing the writes is paced by the store.
 */
export class WriteWindow {
  private current: Promise<unknown>[] = [];
  private previous: Promise<unknown> = Promise.resolve();

  constructor(private readonly step = 1024) {}

  /** Adds a write in flight; resolves when the caller may issue more (rejects if an earlier step failed). */
  async add(write: Promise<unknown>): Promise<void> {
    // Awaited later (a step, or `done`); until then a failure must not count as unhandled.
    write.catch(() => undefined);
    this.current.push(write);
    if (this.current.length < this.step) return;
    const full = Promise.all(this.current);
    full.catch(() => undefined);
    this.current = [];
    const before = this.previous;
    this.previous = full;
    await before;
  }

  /** Resolves once every write added has settled; rejects with the first failure. */
  async done(): Promise<void> {
    const last = Promise.all(this.current);
    this.current = [];
    await Promise.all([this.previous, last]);
  }
}
