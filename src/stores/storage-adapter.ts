/**
 * The storage contract. A store maps string keys to string values (ToolDb
 * stores each record as its JSON text). Third-party stores extend this class
 * and run test/compliance/storage-suite against themselves.
 *
 * Contract:
 * - `get` resolves `undefined` for a missing key and rejects only on failure.
 * - `query(prefix)` resolves the keys that start with `prefix`, sorted, at most `limit`.
 * - `put` has reached the backend once it resolves (it survives the process
 *   being killed); `flush()` makes every put that resolved before it survive
 *   a machine crash too (fsync). Stores without that distinction resolve
 *   `flush()` at once (the default).
 * - `close` is idempotent; after it every operation rejects with code CLOSED.
 */
import { ErrorCode, ToolDbError } from "../core/errors.js";

export interface StorageAdapterHost {
  readonly options: { readonly storageName: string };
}

export interface StorageAdapterConstructor {
  new (db?: StorageAdapterHost, storageName?: string): ToolDbStorageAdapter;
}

export const DEFAULT_QUERY_LIMIT = 10_000;

export abstract class ToolDbStorageAdapter {
  readonly storageName: string;
  private closed = false;

  constructor(db?: StorageAdapterHost, storageName?: string) {
    this.storageName = storageName ?? db?.options.storageName ?? "tooldb";
  }

  /** Resolves when the store can serve requests (opened, migrated). */
  abstract get ready(): Promise<void>;

  get isClosed(): boolean {
    return this.closed;
  }

  // Not `async`: these sit on every put's path, and the extra promise shows in profiles.
  put(key: string, value: string): Promise<void> {
    return this.closed ? this.closedError() : this._put(key, value);
  }

  get(key: string): Promise<string | undefined> {
    return this.closed ? this.closedError() : this._get(key);
  }

  query(prefix: string, limit = DEFAULT_QUERY_LIMIT): Promise<string[]> {
    return this.closed ? this.closedError() : this._query(prefix, limit);
  }

  /** Makes the puts that resolved before this call durable (see the contract above). */
  flush(): Promise<void> {
    return this.closed ? this.closedError() : this._flush();
  }

  protected _flush(): Promise<void> {
    return Promise.resolve();
  }

  private closedError(): Promise<never> {
    return Promise.reject(new ToolDbError(ErrorCode.CLOSED, `store ${this.storageName} is closed`));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this._close();
  }

  protected assertOpen(): void {
    if (this.closed) throw new ToolDbError(ErrorCode.CLOSED, `store ${this.storageName} is closed`);
  }

  protected abstract _put(key: string, value: string): Promise<void>;
  protected abstract _get(key: string): Promise<string | undefined>;
  protected abstract _query(prefix: string, limit: number): Promise<string[]>;
  protected abstract _close(): Promise<void>;
}
