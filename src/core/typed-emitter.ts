/**
 * A small typed event emitter with Node's EventEmitter semantics for what we
 * use (on/once/off, emit in registration order, an unheard "error" throws),
 * and no `node:events` so the core runs in browsers. `close()` owners call
 * `silence()` so that no event fires after close.
 */
export type EventMap = { [event: string]: unknown[] };

type Listener = (...args: any[]) => void;
interface Entry {
  listener: Listener;
  once: boolean;
}

export class TypedEmitter<E extends EventMap> {
  // ES private fields: subclasses may use any member name of their own.
  readonly #listeners = new Map<string, Entry[]>();
  #silenced = false;

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return this.#add(event, listener, false);
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return this.#add(event, listener, true);
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    const entries = this.#listeners.get(event);
    if (!entries) return this;
    // Like Node: the most recently added registration of this listener goes.
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i]!.listener === listener) {
        entries.splice(i, 1);
        break;
      }
    }
    if (entries.length === 0) this.#listeners.delete(event);
    return this;
  }

  /** Returns false when nobody listened or the emitter is silenced. */
  emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    if (this.#silenced) return false;
    const entries = this.#listeners.get(event);
    // A throwing listener must not break the caller's protocol state machine.
    try {
      if (!entries) {
        if (event === "error") throw args[0] instanceof Error ? args[0] : new Error(`unhandled error event: ${String(args[0])}`);
        return false;
      }
      for (const entry of [...entries]) {
        if (entry.once) this.#remove(event, entry);
        entry.listener(...args);
      }
      return true;
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
      return true;
    }
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Drop all listeners and ignore later emits. */
  protected silence(): void {
    this.#silenced = true;
    this.#listeners.clear();
  }

  #add(event: string, listener: Listener, once: boolean): this {
    const entries = this.#listeners.get(event);
    if (entries) entries.push({ listener, once });
    else this.#listeners.set(event, [{ listener, once }]);
    return this;
  }

  #remove(event: string, entry: Entry): void {
    const entries = this.#listeners.get(event);
    const i = entries?.indexOf(entry) ?? -1;
    if (i >= 0) entries!.splice(i, 1);
    if (entries?.length === 0) this.#listeners.delete(event);
  }
}
