import { sha256Hex } from "../crypto/sha256.js";

/**
 * A ToolDb record, field names as on the ToolDb wire:
 * k key, a author address, n proof-of-work nonce, t timestamp (ms),
 * h hash, s signature over h, v value, c CRDT type (null for plain records).
 */
export interface ToolDbRecord<T = unknown> {
  k: string;
  a: string;
  n: number;
  t: number;
  h: string;
  s: string;
  v: T;
  c: string | null;
}

/**
 * The hash that tooldb-dht signs. Unlike tool-db 2.6.6 it starts with the
 * JSON-quoted key, so a signature cannot be replayed under another key; the
 * JSON quoting makes the key boundary unambiguous. The rest is ToolDb's
 * preimage (value JSON, author, timestamp, nonce), so proof of work is
 * searched the same way.
 */
export function boundRecordHash(k: string, v: unknown, a: string, t: number, n: number): string {
  return sha256Hex(boundHashPrefix(k, v, a, t) + n);
}

export function boundHashPrefix(k: string, v: unknown, a: string, t: number): string {
  return `${JSON.stringify(k)}${JSON.stringify(v)}${a}${t}`;
}

/** tool-db 2.6.6's hash: the key is not covered (accepted only in legacy mode). */
export function legacyRecordHash(v: unknown, a: string, t: number, n: number): string {
  return sha256Hex(legacyHashPrefix(v, a, t) + n);
}

export function legacyHashPrefix(v: unknown, a: string, t: number): string {
  return `${JSON.stringify(v)}${a}${t}`;
}

/** Keys of the form `:<address>.<name>` belong to that address. */
export function namespaceOwner(key: string): string | undefined {
  if (!key.startsWith(":")) return undefined;
  const dot = key.indexOf(".");
  return dot === -1 ? key.slice(1) : key.slice(1, dot);
}

/** Keys starting with `==` (user accounts, written by sign-up): the oldest record keeps the name (see `incomingWins`). */
export function isFirstWriterKey(key: string): boolean {
  return key.startsWith("==");
}

/**
 * The order of sign-up records (`==` keys): the older `t` first, then the
 * lower address, then the lower hash, so any two records compare the same
 * way on every node (tool-db 2.6.6's rule, whose equal-timestamp case it
 * left to arrival order).
 */
export function isOlderSignUp(a: ToolDbRecord, b: ToolDbRecord): boolean {
  if (a.t !== b.t) return a.t < b.t;
  if (a.a !== b.a) return a.a < b.a;
  return a.h < b.h;
}

export function userNamespacedKey(address: string, key: string): string {
  return `:${address}.${key}`;
}

/**
 * Conflict resolution, the same on every node whatever the arrival order,
 * so that all converge:
 * - `==` keys (sign-ups): the oldest record wins (`isOlderSignUp`); a later
 *   one never replaces it, whoever signed it. Timestamps are the signer's
 *   claim, so a back-dated sign-up wins a name (docs/protocol-records.md).
 * - otherwise last writer wins by `t`, ties broken by the larger hash.
 */
export function incomingWins(existing: ToolDbRecord, incoming: ToolDbRecord): boolean {
  if (existing.h === incoming.h) return false;
  if (isFirstWriterKey(incoming.k)) return isOlderSignUp(incoming, existing);
  if (incoming.t !== existing.t) return incoming.t > existing.t;
  return incoming.h > existing.h;
}
