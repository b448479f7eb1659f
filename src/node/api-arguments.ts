/**
 * Checks of the arguments of ToolDb's API methods: a wrong argument is a
 * ToolDbError (INVALID_KEY for keys, INVALID_ARGUMENT for the rest) that
 * names it, never a TypeError from deep inside.
 */
import type { BaseCrdt } from "../crdt/base-crdt.js";
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { MAX_KEY_LENGTH } from "../records/record-verifier.js";
import { userNamespacedKey } from "../records/record.js";
import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import { loneSurrogateAt } from "../base/text-formats.js";
import type { PutOptions } from "./acks.js";
import type { FunctionRate, ServerFunctionOptions } from "./server-functions.js";

function invalid(message: string): ToolDbError {
  return new ToolDbError(ErrorCode.INVALID_ARGUMENT, message);
}

/**
 * A key: a non-empty, well-formed string (no lone surrogate: stores keep keys as UTF-8, where "a\uD800" and
 * "a\uFFFD" are one key); a key written to may not contain dots (the dot separates a namespace from its key).
 */
export function checkKey(key: unknown, write: boolean): asserts key is string {
  if (typeof key !== "string" || key.length === 0) throw new ToolDbError(ErrorCode.INVALID_KEY, `key must be a non-empty string, got ${describeValue(key)}`);
  const lone = loneSurrogateAt(key);
  if (lone !== -1) throw new ToolDbError(ErrorCode.INVALID_KEY, `key must be well-formed UTF-16: it holds a lone surrogate (U+${key.charCodeAt(lone).toString(16).toUpperCase()}) at index ${lone}`);
  // tool-db 2.6.6's text, which apps match.
  if (write && key.includes(".")) throw new ToolDbError(ErrorCode.INVALID_KEY, `Key cannot include dots!; ${key}`);
}

/**
 * `key` (as stored: with its namespace) when no node would refuse it for its
 * length. Before, a longer key was written locally, refused by every server
 * and not found by the node's own getData (found by an outside check).
 */
export function checkKeyLength(key: string): string {
  if (key.length > MAX_KEY_LENGTH) throw new ToolDbError(ErrorCode.INVALID_KEY, `key is ${key.length} characters${key.startsWith(":") ? " with its user namespace" : ""}, over the ${MAX_KEY_LENGTH} a record's key may have`);
  return key;
}

/** The key a call stores or looks up: `key` checked, under `user`'s namespace when `userNamespaced` (NOT_SIGNED_IN without one). */
export function keyArgument(user: Pick<ToolDbUserAdapter, "getAddress">, key: string, userNamespaced: boolean, write: boolean): string {
  checkKey(key, write);
  if (!userNamespaced) return checkKeyLength(key);
  const address = user.getAddress();
  if (!address) throw new ToolDbError(ErrorCode.NOT_SIGNED_IN, "sign in before using namespaced keys");
  return checkKeyLength(userNamespacedKey(address, key));
}

/** A key prefix (queryKeys): a string, well-formed as keys are (a lone surrogate would match other keys in a UTF-8 store). */
export function keyPrefixArgument(prefix: unknown): string {
  const text = stringArgument("prefix", prefix);
  const lone = loneSurrogateAt(text);
  if (lone !== -1) throw new ToolDbError(ErrorCode.INVALID_KEY, `prefix must be well-formed UTF-16: it holds a lone surrogate (U+${text.charCodeAt(lone).toString(16).toUpperCase()}) at index ${lone}`);
  return text;
}

/** `value` when it is a string (`name` is the argument's name in the message). */
export function stringArgument(name: string, value: unknown): string {
  if (typeof value !== "string") throw invalid(`${name} must be a string, got ${describeValue(value)}`);
  return value;
}

/** `value` when it is a function. */
export function functionArgument<F>(name: string, value: F): F {
  if (typeof value !== "function") throw invalid(`${name} must be a function, got ${describeValue(value)}`);
  return value;
}

/** The fields of addServerFunction's options. */
const FUNCTION_OPTIONS: ReadonlySet<string> = new Set<keyof ServerFunctionOptions>(["callsPerSecond", "burst"]);

/**
 * addServerFunction's options as a rate (undefined: unbounded). An array, or
 * a field it does not know (a typo such as `callPerSecond` would leave the
 * function unbounded without a word), is INVALID_ARGUMENT naming it.
 */
export function functionRate(options: ServerFunctionOptions | undefined): FunctionRate | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw invalid(`options must be an object, got ${describeValue(options)}`);
  for (const field of Object.keys(options)) {
    if (!FUNCTION_OPTIONS.has(field)) throw invalid(`options.${field.slice(0, 64)} is not an option of addServerFunction (callsPerSecond, burst)`);
  }
  const { callsPerSecond, burst } = options;
  if (callsPerSecond === undefined || callsPerSecond === Infinity) {
    if (burst !== undefined) throw invalid("options.burst needs options.callsPerSecond");
    return undefined;
  }
  if (typeof callsPerSecond !== "number" || !(callsPerSecond > 0) || !Number.isFinite(callsPerSecond)) {
    throw invalid(`options.callsPerSecond must be a number > 0, got ${describeValue(callsPerSecond)}`);
  }
  const size = burst ?? Math.max(1, callsPerSecond);
  if (typeof size !== "number" || !(size >= 1) || !Number.isFinite(size)) throw invalid(`options.burst must be a number >= 1, got ${describeValue(burst)}`);
  return { callsPerSecond, burst: size };
}

/** A timeout in ms: a finite number >= 0 (timers need a finite delay). */
export function checkTimeout(name: string, ms: unknown): asserts ms is number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) throw invalid(`${name} must be a finite number of ms >= 0, got ${describeValue(ms)}`);
}

/** A CRDT instance: what putCrdt reads (`type`, `getChanges`) or getCrdt merges into (`mergeChanges`). */
export function checkCrdt(crdt: unknown, use: "getChanges" | "mergeChanges"): asserts crdt is BaseCrdt {
  const c = crdt as Partial<BaseCrdt> | null;
  const ok = typeof c === "object" && c !== null && typeof c[use] === "function" && (use === "mergeChanges" || typeof c.type === "string");
  if (!ok) throw invalid(`not a CRDT (a MapCrdt, ListCrdt or CounterCrdt, or a class with ${use === "getChanges" ? "type and getChanges" : "mergeChanges"}): got ${describeValue(crdt)}`);
}

/**
 * putData's options: `{ ack?: count of servers, timeoutMs?: ms }`. An array
 * is tool-db 2.6.6's fourth argument (`to`, peers the put passed through),
 * taken and ignored: this node's own put has passed through nobody.
 */
export function putOptions(options: unknown): PutOptions {
  if (Array.isArray(options) || options === null) return {}; // 2.6.6 took `to || []`
  checkPutOptions(options);
  return options;
}

function checkPutOptions(options: unknown): asserts options is PutOptions {
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw invalid(`put options must be an object, got ${describeValue(options)}`);
  const { ack, timeoutMs } = options as Record<string, unknown>;
  if (ack !== undefined && !(typeof ack === "number" && Number.isSafeInteger(ack) && ack >= 0)) throw invalid(`put option ack must be a whole number of servers >= 0, got ${describeValue(ack)}`);
  if (timeoutMs !== undefined) checkTimeout("put option timeoutMs", timeoutMs);
}

/** `JSON.stringify(value)`, or INVALID_ARGUMENT when the value has no JSON form (undefined, a function, a cycle, a BigInt). */
export function valueJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw invalid(`value is not serialisable as JSON: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
  }
  if (json === undefined) throw invalid(`value must be JSON-serialisable, got ${describeValue(value)}`);
  return json;
}
