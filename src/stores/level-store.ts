import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { ClassicLevel } from "classic-level";
import { coalesced } from "../base/coalesced.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import { AbstractLevelStore } from "./abstract-level-store.js";
import { checkLevelDir } from "./leveldb-check.js";
import type { StorageAdapterHost, StoreHints } from "./storage-adapter.js";

/** Not valid UTF-8, so never a key of ours (keys are UTF-8 strings). */
const FSYNC_MARK = new Uint8Array([0xff, 0xfe]);

/**
 * LevelDB store (classic-level). `storageName` is the database directory; it
 * is used as given (absolute or relative to the working directory).
 *
 * A directory that holds a database is checked before it opens and never
 * recreated: a damaged one (CURRENT missing, manifest truncated, a table
 * shorter than recorded, a corrupt stretch inside a log) refuses to open
 * with STORAGE_DAMAGED, where LevelDB itself would open it and lose data
 * (see leveldb-check.ts); `LevelStore.repair` is the way back.
 */
export class LevelStore extends AbstractLevelStore {
  constructor(host?: StorageAdapterHost, storageName?: string, hints?: StoreHints) {
    const compression = hints?.incompressible !== true;
    super(host, storageName, (name) => new ClassicLevel<string, string>(name, { keyEncoding: "utf8", valueEncoding: "utf8", compression }), "LevelDB", refuseDamaged);
  }

  /**
   * LevelDB's repair (classic-level's `repair`): rebuilds the manifest from
   * the table and log files there, keeping every record it can read. For a
   * store that refused to open with STORAGE_DAMAGED; close it first.
   */
  static async repair(dir: string): Promise<void> {
    await ClassicLevel.repair(dir);
  }

  /**
   * One synchronous LevelDB write fsyncs the write-ahead log, and with it
   * every write before it; concurrent flushes share one (group commit). The
   * write deletes a key that is not UTF-8, so it touches no data.
   */
  private readonly fsync = coalesced(async () => {
    await this.ready;
    const level = this.database as unknown as ClassicLevel<string, string>;
    await this.engineCall(() => level.del(FSYNC_MARK as unknown as string, { keyEncoding: "view", sync: true })).catch((err: unknown) => this.writeFailed(err));
  });

  protected override _flush(): Promise<void> {
    return this.fsync();
  }
}

/** Opens only a directory that is new or whole: a damaged one is never recreated or opened. */
async function refuseDamaged(dir: string): Promise<{ createIfMissing: boolean }> {
  const state = await checkLevelDir(dir).catch((err: unknown) => {
    throw new ToolDbError(ErrorCode.STORAGE_FAILED, `cannot read LevelDB directory ${dir}: ${errorText(err)}`, err);
  });
  if (state.kind === "damaged") {
    throw new ToolDbError(
      ErrorCode.STORAGE_DAMAGED,
      `LevelDB at ${dir} is damaged: ${state.problems.join("; ")}. Nothing was changed. Back the directory up, then repair it (tooldb-dht serve --repair, or LevelStore.repair), which keeps every record it can read.`,
    );
  }
  if (state.kind === "absent") {
    await makeDirectory(dir).catch((err: unknown) => {
      throw new ToolDbError(ErrorCode.STORAGE_FAILED, `cannot create LevelDB directory ${dir}: ${errorText(err)}`, err);
    });
  }
  return { createIfMissing: state.kind !== "healthy" };
}

/**
 * mkdir -p one level at a time. Node's recursive mkdir (which classic-level
 * uses) never returns for a path under /proc: it retries ENOENT forever.
 */
async function makeDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let at = resolve(dir); !(await exists(at)); at = dirname(at)) {
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  // Another store may create the same parent meanwhile (a node opens its data and keys stores at once).
  for (const path of missing) await mkdir(path).catch((err: NodeJS.ErrnoException) => (err.code === "EEXIST" ? undefined : Promise.reject(err)));
}

function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === "ENOENT" ? false : Promise.reject(err)),
  );
}
