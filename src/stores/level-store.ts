import { ClassicLevel } from "classic-level";
import { ErrorCode, ToolDbError, errorText } from "../core/errors.js";
import { type StorageAdapterHost, ToolDbStorageAdapter } from "./storage-adapter.js";

/**
 * LevelDB store (classic-level). `storageName` is the database directory; it
 * is used as given (absolute or relative to the working directory).
 */
export class LevelStore extends ToolDbStorageAdapter {
  private readonly db: ClassicLevel<string, string>;
  private readonly opened: Promise<void>;

  constructor(host?: StorageAdapterHost, storageName?: string) {
    super(host, storageName);
    this.db = new ClassicLevel<string, string>(this.storageName, { keyEncoding: "utf8", valueEncoding: "utf8" });
    this.opened = this.db.open().catch((err: unknown) => {
      throw new ToolDbError(ErrorCode.STORAGE_FAILED, `cannot open LevelDB at ${this.storageName}: ${errorText(err instanceof Error && err.cause !== undefined ? err.cause : err)}`, err);
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
    const gte = Buffer.from(prefix, "utf8");
    const lt = Buffer.concat([gte, Buffer.from([0xff])]);
    const keys = await this.db.keys({ gte, lt, limit, keyEncoding: "buffer" }).all();
    return keys.map((key) => key.toString("utf8"));
  }

  protected async _close(): Promise<void> {
    await this.opened.catch(() => undefined);
    await this.db.close();
  }
}
