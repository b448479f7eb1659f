/**
 * Coalesces single operations into batches: operations submitted in the
 * same turn, or while the previous batch is being applied, go to the
 * backend together as the next batch (one call, e.g. one LevelDB write or
 * multi-get, instead of one thread-pool job each). At most one batch is in
 * flight, so operations reach the backend in the order they were submitted;
 * a lone operation waits for nothing but a microtask.
 */
interface Pending<In, Out> {
  input: In;
  resolve: (out: Out) => void;
  reject: (err: unknown) => void;
}

const ignore = () => undefined;

export class BatchQueue<In, Out> {
  private pending: Pending<In, Out>[] = [];
  private running: Promise<void> | undefined;

  /**
   * @param apply applies a batch, resolving one output per input in order (or void); a
   *   rejection rejects every operation of that batch.
   * @param maxBatch operations per batch at most (the rest go in the next one).
   */
  constructor(
    private readonly apply: (inputs: In[]) => Promise<Out[] | void>,
    private readonly maxBatch = 1024,
  ) {}

  submit(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      this.running ??= Promise.resolve().then(() => this.drain());
    });
  }

  /**
   * Submits `inputs` in order with one promise for all (their outputs are
   * dropped): it resolves once the last one's batch was applied, and rejects
   * if any of their batches failed.
   */
  submitAll(inputs: readonly In[]): Promise<void> {
    if (inputs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const last = inputs.length - 1;
      // Batches apply in order: when the last input's batch is done, so are the others'.
      for (let i = 0; i < last; i++) this.pending.push({ input: inputs[i]!, resolve: ignore, reject });
      this.pending.push({ input: inputs[last]!, resolve: () => resolve(), reject });
      this.running ??= Promise.resolve().then(() => this.drain());
    });
  }

  /** Resolves once every operation submitted so far has settled. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        const outputs = await this.apply(batch.map((p) => p.input));
        batch.forEach((p, i) => p.resolve(outputs ? outputs[i]! : (undefined as Out)));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.running = undefined;
  }
}
