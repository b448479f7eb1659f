/**
 * What the parts of the storage compliance suite (storage-suite.ts) share:
 * the factory a store is tested through, the suite's store helpers, and the
 * key-order helpers.
 */
import assert from "node:assert/strict";
import { type ErrorCode, ToolDbError } from "../../src/base/errors.js";
import type { ToolDbStorageAdapter } from "../../src/stores/index.js";

export interface StorageAdapterFactory {
  /** A fresh, empty store named `storageName` (names are unique per call). Need not be ready yet. */
  create(storageName: string): Promise<ToolDbStorageAdapter> | ToolDbStorageAdapter;
  /**
   * Persistent stores only: open `storageName` again after it was closed.
   * When present the suite checks that data survives close and reopen.
   */
  reopen?(storageName: string): Promise<ToolDbStorageAdapter> | ToolDbStorageAdapter;
  /** Runs once after the suite, after every store it opened was closed. */
  cleanup?(): Promise<void> | void;
}

/** What every part of the suite gets from `storageAdapterSuite`. */
export interface StorageSuiteContext {
  factory: StorageAdapterFactory;
  /** A store name not used before in this suite. */
  nextName(): string;
  /** Closes `store` after the suite. */
  track(store: ToolDbStorageAdapter): ToolDbStorageAdapter;
  /** A fresh store, ready to use. */
  open(): Promise<ToolDbStorageAdapter>;
  putAll(store: ToolDbStorageAdapter, keys: readonly string[], value?: string): Promise<void>;
}

/** Unicode code point order (= UTF-8 byte order) for well-formed strings. */
export function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** An `assert.rejects` validator: a ToolDbError with exactly this code. */
export function toolDbError(code: ErrorCode): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof ToolDbError, `expected a ToolDbError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** Shows keys as code points so assertion diffs stay readable. */
export function codePoints(keys: readonly string[]): string[] {
  return keys.map((k) => [...k].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase()}`).join(" "));
}

export function sortedByCodePoint(keys: readonly string[]): string[] {
  return [...keys].sort(compareCodePoints);
}
