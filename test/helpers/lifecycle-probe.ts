/**
 * What the lifecycle race tests check on every component they close: that
 * no event reaches a listener after close resolved, and that the handles
 * keeping the event loop alive are back to what they were before.
 */
import assert from "node:assert/strict";
import { ErrorCode, isToolDbError } from "../../src/index.js";

/** Every event of ToolDbEvents but "error" (a listener there would change its throw-when-unheard semantics). */
export const TOOLDB_EVENTS = [
  "ready", "init", "connect", "disconnect", "peer-connect", "peer-disconnect", "server-recovered", "put", "crdtput", "data",
  "verified", "message", "refused", "dial-failed", "servers", "put-refused", "username-conflict-resolved",
  "current-user-lost-username", "signup-conflict-detected", "outbox-overflow", "put-confirmed",
] as const;

/** Every event of NetworkEvents a user may listen to. */
export const NETWORK_EVENTS = ["session-open", "session-proven", "session-close", "duplicate", "dial-failed"] as const;

interface Emitting {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * Listens to each of `events` on `emitter` and wraps its `emit`; once
 * `closed()` was called, every event delivered to a listener is recorded in
 * `late` (a silenced emitter delivers none).
 */
export function watchEmits(emitter: Emitting, events: readonly string[]): { closed(): void; late: string[] } {
  let isClosed = false;
  const late: string[] = [];
  for (const event of events) emitter.on(event, () => undefined);
  const original = emitter.emit.bind(emitter);
  emitter.emit = (event: string, ...args: unknown[]) => {
    const delivered = original(event, ...args);
    if (isClosed && delivered) late.push(event);
    return delivered;
  };
  return { closed: () => void (isClosed = true), late };
}

/** Counts of the handles keeping the event loop alive, by type (TCPWrap, UDPWrap, Timeout, …). */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function leftOver(before: Map<string, number>): string[] {
  const now = activeResources();
  const extra: string[] = [];
  for (const [type, n] of now) {
    // A file read of node's own (module loading, the test runner) is not a handle a component holds.
    if (type === "FSReqCallback" || type === "FSReqPromise") continue;
    const was = before.get(type) ?? 0;
    if (n > was) extra.push(`${type} +${n - was}`);
  }
  return extra;
}

/**
 * Asserts that no more handles keep the loop alive than `before`. A closed
 * socket's handle goes on its next loop turn, so this waits (bounded by
 * `ms`) for the count to come back down, one timer turn at a time.
 */
export async function assertNoLeftovers(before: Map<string, number>, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  let extra = leftOver(before);
  while (extra.length && Date.now() < deadline) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
    extra = leftOver(before);
  }
  assert.deepEqual(extra, [], `${what}: handles left behind after close`);
}

/** Resolves with `promise`'s value; fails the test (and clears its timer) when it does not settle in `ms`. */
export async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits `n` turns of the event loop (setImmediate): where in a start-up or a call a close is thrown. */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** How a promise settled ("resolved", "CLOSED" or the other rejection), without letting a rejection go unhandled. */
export function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "resolved",
    (err: unknown) => (isToolDbError(err, ErrorCode.CLOSED) ? "CLOSED" : `rejected: ${String(err)}`),
  );
}

/**
 * Advances `clock` by `step` ms, two turns apart, until `closing` settled
 * (a bound on the node's clock that close() waits for), then checks it did
 * within `ms` of real time.
 */
export async function closesOnClock(clock: { advance(ms: number): void }, closing: Promise<void>, step: number, ms: number, what: string): Promise<void> {
  let done = false;
  void closing.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 100 && !done; i++) {
    await turns(2);
    clock.advance(step);
  }
  await settlesWithin(closing, ms, what);
}
