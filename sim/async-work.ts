/**
 * Knows when the nodes of the simulator are idle. The only real work a node
 * does off the main thread is cryptography (node:crypto's callback `verify`,
 * WebCrypto, signature checks on worker threads); `instrumentCrypto` counts
 * the first two while they run and the user adapter `track`s every
 * signature check. Everything else a node does between two virtual
 * instants is promise chains and setImmediate turns, which `settle` lets
 * run out.
 */
import nodeCrypto from "node:crypto";

let inFlight = 0;
let activity = 0;
let instrumented = false;
/** Waiting for the pool to drain (instead of spinning turns while it works). */
let drained: Array<() => void> = [];

function finished(): void {
  inFlight--;
  activity++;
  if (inFlight === 0 && drained.length > 0) {
    const waiters = drained;
    drained = [];
    for (const resolve of waiters) resolve();
  }
}

type AnyFn = (...args: unknown[]) => unknown;

/** Wraps node:crypto's callback verify and WebCrypto's subtle methods with an in-flight count (once per process). */
export function instrumentCrypto(): void {
  if (instrumented) return;
  instrumented = true;
  const verify = nodeCrypto.verify as unknown as AnyFn;
  (nodeCrypto as unknown as { verify: AnyFn }).verify = function (this: unknown, ...args: unknown[]) {
    const callback = args[4];
    if (typeof callback !== "function") return verify.apply(this, args);
    inFlight++;
    activity++;
    args[4] = (...result: unknown[]) => {
      finished();
      (callback as AnyFn)(...result);
    };
    return verify.apply(this, args);
  };
  const subtle = globalThis.crypto.subtle as unknown as Record<string, AnyFn>;
  for (const name of ["sign", "verify", "digest", "importKey", "exportKey", "generateKey", "deriveBits", "deriveKey", "encrypt", "decrypt", "wrapKey", "unwrapKey"]) {
    const original = subtle[name];
    if (typeof original !== "function") continue;
    subtle[name] = function (this: unknown, ...args: unknown[]) {
      inFlight++;
      activity++;
      const result = original.apply(subtle, args) as Promise<unknown>;
      result.then(finished, finished);
      return result;
    };
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class AsyncWork {
  /** Something happened (a timer set, a frame queued): the nodes are not idle yet. */
  touch(): void {
    activity++;
  }

  /**
   * Counts `work` as running until it settles: signature checks, whatever
   * engine runs them (libuv's pool, worker threads), go through here.
   */
  track<T>(work: Promise<T>): Promise<T> {
    inFlight++;
    activity++;
    work.then(finished, finished);
    return work;
  }

  get cryptoInFlight(): number {
    return inFlight;
  }

  /** Resolves once no crypto call is running and two event-loop turns in a row saw no activity. */
  async settle(): Promise<void> {
    let quiet = 0;
    while (quiet < 2) {
      if (inFlight > 0) {
        await new Promise<void>((resolve) => drained.push(resolve));
        quiet = 0;
        continue;
      }
      const before = activity;
      await turn();
      if (inFlight > 0 || activity !== before) quiet = 0;
      else quiet++;
    }
  }
}
