import { ErrorCode, ToolDbError, errorText } from "../core/errors.js";
import { type RangeOptions, type StorageAdapterHost, type StoreEntry, ToolDbStorageAdapter } from "./storage-adapter.js";

/** What we use of an abstract-level database (classic-level, browser-level). */
export interface LevelDatabase {
  open(): Promise<void>;
  put(key: string, value: string): Promise<void>;
  get(key: string): Promise<string | undefined>;
  keys(options: { gte: Uint8Array; lt: Uint8Array; limit: number; keyEncoding: "view" }): { all(): Promise<Uint8Array[]> };
  del(key: string): Promise<void>;
  /** A sorted snapshot iterator over string keys and values (abstract-level's `iterator`). */
  iterator(options: RangeOptions & { limit: number }): AsyncIterable<StoreEntry>;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A store over any abstract-level database: LevelStore (LevelDB, Node) and
 * IndexedDbStore (IndexedDB, browsers) differ only in the engine they open.
 */
export abstract class AbstractLevelStore extends ToolDbStorageAdapter {
  private readonly db: LevelDatabase;
  private readonly opened: Promise<void>;

  constructor(host: StorageAdapterHost | undefined, storageName: string | undefined, open: (name: string) => LevelDatabase, engine: string) {
    super(host, storageName);
    this.db = open(this.storageName);
    this.opened = this.db.open().catch((err: unknown) => {
      throw new ToolDbError(ErrorCode.STORAGE_FAILED, `cannot open ${engine} at ${this.storageName}: ${errorText(err instanceof Error && err.cause !== undefined ? err.cause : err)}`, err);
    });
    // Surface open failures through `ready`/operations, never as an unhandled rejection.
    this.opened.catch(() => undefined);
  }

  get ready(): Promise<void> {
    return this.opened;
  }

  protected async _put(key: string, value: string): Promise<void> {
    await this.opened;
    await this.db.put(key, value);
  }

  protected async _get(key: string): Promise<string | undefined> {
    await this.opened;
    return (await this.db.get(key)) ?? undefined;
  }

  protected async _query(prefix: string, limit: number): Promise<string[]> {
    await this.opened;
    // UTF-8 never contains the byte 0xFF, so [prefix, prefix + 0xFF) is exactly the keys that start with prefix.
    const gte = encoder.encode(prefix);
    const lt = new Uint8Array(gte.length + 1);
    lt.set(gte);
    lt[gte.length] = 0xff;
    const keys = await this.db.keys({ gte, lt, limit, keyEncoding: "view" }).all();
    return keys.map((key) => decoder.decode(key));
  }

  protected async _del(key: string): Promise<void> {
    await this.opened;
    await this.db.del(key);
  }

  protected async *_range(options: RangeOptions): AsyncGenerator<StoreEntry> {
    await this.opened;
    // Only the bounds that are set; the iterator reads in batches and is closed when the loop ends early.
    const bounds = Object.fromEntries(Object.entries(options).filter(([name, v]) => v !== undefined && name !== "limit"));
    yield* this.db.iterator({ ...bounds, limit: options.limit ?? -1 });
  }

  protected async _close(): Promise<void> {
    await this.opened.catch(() => undefined);
    await this.db.close();
  }
}
