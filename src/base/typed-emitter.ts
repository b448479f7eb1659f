/**
 * A small typed event emitter with Node's EventEmitter semantics for what we
 * use (on/once/off, emit in registration order, an unheard "error" throws),
 * and no `node:events` so the core runs in browsers. `close()` owners call
 * `silence()` so that no event fires after close.
 *
 * Kept small per instance (a server holds one per link, by the thousand):
 * like Node's, an event with one listener stores the function itself, and
 * only `once` registrations are wrapped.
 */
export type EventMap = { [event: string]: unknown[] };

type Listener = (...args: any[]) => void;
/** A `once` registration. */
interface Once {
  once: Listener;
}
type Slot = Listener | Once;

const listenerOf = (slot: Slot): Listener => (typeof slot === "function" ? slot : slot.once);

export class TypedEmitter<E extends EventMap> {
  // ES private fields: subclasses may use any member name of their own.
  /** Created by the first registration (many emitters never get one). */
  #map: Map<string, Slot | Slot[]> | undefined;
  #silenced = false;

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return this.#add(event, listener);
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return this.#add(event, { once: listener });
  }

  get #listeners(): Map<string, Slot | Slot[]> {
    return (this.#map ??= new Map());
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    const slots = this.#map?.get(event);
    if (slots === undefined) return this;
    if (!Array.isArray(slots)) {
      if (listenerOf(slots) === listener) this.#listeners.delete(event);
      return this;
    }
    // Like Node: the most recently added registration of this listener goes.
    for (let i = slots.length - 1; i >= 0; i--) {
      if (listenerOf(slots[i]!) === listener) {
        slots.splice(i, 1);
        break;
      }
    }
    if (slots.length === 0) this.#listeners.delete(event);
    return this;
  }

  /** Returns false when nobody listened or the emitter is silenced. */
  emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    if (this.#silenced) return false;
    const slots = this.#map?.get(event);
    // A throwing listener must not break the caller's protocol state machine.
    try {
      if (slots === undefined) {
        if (event === "error") throw args[0] instanceof Error ? args[0] : new Error(`unhandled error event: ${String(args[0])}`);
        return false;
      }
      if (Array.isArray(slots)) for (const slot of [...slots]) this.#call(event, slot, args);
      else this.#call(event, slots, args);
      return true;
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
      return true;
    }
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    const slots = this.#map?.get(event);
    return slots === undefined ? 0 : Array.isArray(slots) ? slots.length : 1;
  }

  /** Drop all listeners and ignore later emits. */
  protected silence(): void {
    this.#silenced = true;
    this.#map = undefined;
  }

  #call(event: string, slot: Slot, args: unknown[]): void {
    if (typeof slot === "function") return slot(...args);
    this.#remove(event, slot);
    slot.once(...args);
  }

  #add(event: string, slot: Slot): this {
    const slots = this.#listeners.get(event);
    if (slots === undefined) this.#listeners.set(event, slot);
    else if (Array.isArray(slots)) slots.push(slot);
    else this.#listeners.set(event, [slots, slot]);
    return this;
  }

  #remove(event: string, slot: Slot): void {
    const slots = this.#listeners.get(event);
    if (slots === slot) this.#listeners.delete(event);
    else if (Array.isArray(slots)) {
      const i = slots.indexOf(slot);
      if (i >= 0) slots.splice(i, 1);
      if (slots.length === 0) this.#listeners.delete(event);
    }
  }
}
