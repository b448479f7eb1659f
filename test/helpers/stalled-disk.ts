/**
 * Preloaded with `node --import` into a CLI child (see stalledDisk below):
 * the disk under LevelDB stalls once the process starts closing a store.
 * The first engine close opens a FIFO nobody writes to: that open is a job
 * on libuv's pool that does not end, and with UV_THREADPOOL_SIZE=1 it holds
 * the pool's only thread, so LevelDB's own native calls (this close, and
 * every write or close after it) wait behind it, as on a disk that stopped
 * answering. Each such pending job keeps Node from exiting by itself.
 */
import { execFileSync } from "node:child_process";
import { open } from "node:fs/promises";
import { ClassicLevel } from "classic-level";
import type { RunOptions } from "./cli.js";

const STALL_ENV = "TOOLDB_STALL_FIFO";

const fifo = process.env[STALL_ENV];
if (fifo) {
  const engine = ClassicLevel.prototype as unknown as { _close(): Promise<void> };
  const close = engine._close;
  let stalled = false;
  engine._close = function (this: unknown): Promise<void> {
    if (!stalled) {
      stalled = true;
      process.stdout.write("stall: the disk stopped answering\n"); // what the test waits for
      void open(fifo, "r").then(
        (fh) => fh.close(),
        () => undefined,
      );
    }
    return close.call(this);
  };
}

/** RunOptions under which the CLI's disk stalls at its first store close (on a FIFO it makes at `path`). */
export function stalledDisk(path: string): RunOptions {
  execFileSync("mkfifo", [path]);
  const preload = `--import=${new URL("./stalled-disk.js", import.meta.url).href}`;
  const env = process.env;
  return { env: { ...env, [STALL_ENV]: path, UV_THREADPOOL_SIZE: "1", NODE_OPTIONS: [env.NODE_OPTIONS, preload].filter(Boolean).join(" ") } };
}
