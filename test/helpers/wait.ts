/**
 * Event-driven waiting for tests: every wait is bounded and fails with a
 * message that says what it waited for. Nothing here sleeps "for luck".
 */
import type { ToolDb, ToolDbEvents } from "../../src/node/tooldb.js";
import type { NetworkEvents, ToolDbNetworkAdapter } from "../../src/network/network-adapter.js";

/** Anything with on/off: TypedEmitter, node's EventEmitter, a `ws` WebSocket. */
export interface Listenable {
  on(event: any, listener: any): unknown;
  off(event: any, listener: any): unknown;
}

export class WaitTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`timed out after ${ms} ms waiting for ${what}`);
    this.name = "WaitTimeoutError";
  }
}

/**
 * Resolves with the arguments of the first `event` (that satisfies
 * `predicate`, when given) emitted within `ms`; rejects otherwise. Listen
 * before triggering the action that causes the event.
 */
export function waitFor<K extends keyof ToolDbEvents & string>(
  emitter: ToolDb,
  event: K,
  ms: number,
  predicate?: (...args: ToolDbEvents[K]) => boolean,
): Promise<ToolDbEvents[K]>;
export function waitFor<K extends keyof NetworkEvents & string>(
  emitter: ToolDbNetworkAdapter,
  event: K,
  ms: number,
  predicate?: (...args: NetworkEvents[K]) => boolean,
): Promise<NetworkEvents[K]>;
export function waitFor(emitter: Listenable, event: string, ms: number, predicate?: (...args: any[]) => boolean): Promise<any[]>;
export function waitFor(emitter: Listenable, event: string, ms: number, predicate?: (...args: any[]) => boolean): Promise<any[]> {
  return new Promise<any[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new WaitTimeoutError(`event "${event}"`, ms));
    }, ms);
    function listener(...args: any[]): void {
      let ok: boolean;
      try {
        ok = predicate ? predicate(...args) : true;
      } catch (err) {
        clearTimeout(timer);
        emitter.off(event, listener);
        reject(err);
        return;
      }
      if (!ok) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    }
    emitter.on(event, listener);
  });
}

/** Resolves once `count` matching events were seen within `ms`, with their arguments. */
export function waitForCount(
  emitter: Listenable,
  event: string,
  count: number,
  ms: number,
  predicate?: (...args: any[]) => boolean,
): Promise<any[][]> {
  return new Promise<any[][]>((resolve, reject) => {
    const seen: any[][] = [];
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new WaitTimeoutError(`${count} "${event}" events (saw ${seen.length})`, ms));
    }, ms);
    function listener(...args: any[]): void {
      if (predicate && !predicate(...args)) return;
      seen.push(args);
      if (seen.length < count) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(seen);
    }
    emitter.on(event, listener);
  });
}

/** Records every `event` until `stop()`; `events` holds each call's arguments. */
export function record<A extends any[] = any[]>(emitter: Listenable, event: string): { events: A[]; stop(): void } {
  const events: A[] = [];
  const listener = (...args: any[]) => void events.push(args as A);
  emitter.on(event, listener);
  return { events, stop: () => void emitter.off(event, listener) };
}

/**
 * Waits until `condition` holds, re-checking it whenever one of `triggers`
 * fires (and once at the start). Use it for state that is reached through
 * events whose order is not fixed, e.g. "both ends see exactly one link".
 */
export function until(
  condition: () => boolean,
  triggers: Array<[Listenable, string]>,
  ms: number,
  what: string,
): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const [emitter, event] of triggers) emitter.off(event, check);
      if (err) reject(err);
      else resolve();
    };
    // Re-check after the emitting code finished its own bookkeeping.
    function check(): void {
      queueMicrotask(() => {
        try {
          if (condition()) finish();
        } catch (err) {
          finish(err as Error);
        }
      });
    }
    const timer = setTimeout(() => finish(new WaitTimeoutError(what, ms)), ms);
    for (const [emitter, event] of triggers) emitter.on(event, check);
  });
}

/** Rejects when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(what, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
