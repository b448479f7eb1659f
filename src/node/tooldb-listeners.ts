/**
 * The part of ToolDb's API that only registers callbacks: key listeners,
 * custom verifications and tool-db's id listeners. ToolDb extends it; the
 * registries it fills are used by record intake, local writes and message
 * handling.
 */
import { CustomVerifiers, type CustomVerification } from "../records/custom-verifiers.js";
import { KeyListeners, type KeyListener } from "./key-listeners.js";
import type { ToolDbMessage } from "../records/messages.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbEvents } from "./node-types.js";
import type { PendingRequests } from "./pending-requests.js";
import type { ToolDbRecord } from "../records/record.js";
import { TypedEmitter } from "../base/typed-emitter.js";
import { checkKey, checkTimeout, functionArgument, stringArgument } from "./api-arguments.js";

export abstract class ToolDbListeners extends TypedEmitter<ToolDbEvents> {
  readonly keyListeners = new KeyListeners();
  readonly customVerifiers = new CustomVerifiers();
  /** Replies awaited by message id (ToolDb's requests and the id listeners below). */
  abstract readonly requests: PendingRequests<ToolDbMessage, PeerSession>;

  /** A key that is not one (INVALID_KEY) or a `fn` that is not a function (INVALID_ARGUMENT) throws here, not on the first change. */
  addKeyListener<T = unknown>(key: string, fn: (record: ToolDbRecord<T>) => void): number {
    checkKey(key, false);
    return this.keyListeners.add(key, functionArgument("fn", fn) as KeyListener);
  }

  removeKeyListener(id: number): void {
    this.keyListeners.remove(id);
  }

  /** `fn(record, previous)` must resolve true for every verified record under `keyPrefix`, local or remote, before it is stored. */
  addCustomVerification<T = any>(keyPrefix: string, fn: CustomVerification<T>): number {
    return this.customVerifiers.add(stringArgument("keyPrefix", keyPrefix), functionArgument("fn", fn));
  }

  removeCustomVerification(id: number): void {
    this.customVerifiers.remove(id);
  }

  /** tool-db's id listener: `fn` gets the first reply with this message id (bounded: dropped after `timeoutMs`). */
  addIdListener(id: string, fn: (message: ToolDbMessage) => void, timeoutMs = 60_000): void {
    stringArgument("id", id);
    functionArgument("fn", fn);
    checkTimeout("timeoutMs", timeoutMs);
    this.requests.add(id, timeoutMs, (message) => void fn(message), () => undefined);
  }

  removeIdListener(id: string): void {
    this.requests.remove(id);
  }
}
