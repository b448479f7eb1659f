import { EventEmitter } from "node:events";

/**
 * EventEmitter with a typed event map. `close()` owners call `silence()` so
 * that no event fires after close.
 */
export type EventMap = { [event: string]: unknown[] };

export class TypedEmitter<E extends EventMap> {
  private readonly emitter = new EventEmitter();
  private silenced = false;

  constructor() {
    // Many tests and components listen; this is not a leak signal for us.
    this.emitter.setMaxListeners(0);
  }

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Returns false when nobody listened or the emitter is silenced. */
  emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    if (this.silenced) return false;
    // A throwing listener must not break the caller's protocol state machine.
    try {
      return this.emitter.emit(event, ...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
      return true;
    }
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.emitter.listenerCount(event);
  }

  /** Drop all listeners and ignore later emits. */
  protected silence(): void {
    this.silenced = true;
    this.emitter.removeAllListeners();
  }
}
