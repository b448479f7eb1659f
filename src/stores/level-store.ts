import { ClassicLevel } from "classic-level";
import { coalesced } from "../base/coalesced.js";
import { AbstractLevelStore } from "./abstract-level-store.js";
import type { StorageAdapterHost } from "./storage-adapter.js";

/** Not valid UTF-8, so never a key of ours (keys are UTF-8 strings). */
const FSYNC_MARK = new Uint8Array([0xff, 0xfe]);

/**
 * LevelDB store (classic-level). `storageName` is the database directory; it
 * is used as given (absolute or relative to the working directory).
 */
export class LevelStore extends AbstractLevelStore {
  private readonly level: ClassicLevel<string, string>;

  constructor(host?: StorageAdapterHost, storageName?: string) {
    let level: ClassicLevel<string, string> | undefined;
    super(host, storageName, (name) => (level = new ClassicLevel<string, string>(name, { keyEncoding: "utf8", valueEncoding: "utf8" })), "LevelDB");
    this.level = level!;
  }

  /**
   * One synchronous LevelDB write fsyncs the write-ahead log, and with it
   * every write before it; concurrent flushes share one (group commit). The
   * write deletes a key that is not UTF-8, so it touches no data.
   */
  private readonly fsync = coalesced(async () => {
    await this.ready;
    await this.level.del(FSYNC_MARK as unknown as string, { keyEncoding: "view", sync: true });
  });

  protected override _flush(): Promise<void> {
    return this.fsync();
  }
}
