/**
 * The LevelDB directories of a lifecycle test file: one temporary folder
 * for the file (removed after it, which also checks that no rejection went
 * unhandled), fresh store names in it, and the check that a directory was
 * released (it opens again in this process: LevelDB holds a lock per process).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { LevelStore } from "../../src/index.js";
import { settlesWithin } from "./lifecycle-probe.js";
import { collectUnhandledRejections } from "./unhandled.js";

/** Registers the file's hooks; returns what makes a fresh store name. */
export function scratchStores(prefix: string): () => string {
  const unhandled = collectUnhandledRejections();
  let dir: string | undefined;
  let made = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file");
  });
  return () => join(dir!, `db-${made++}`);
}

/** Each directory opens again here within `ms`: whoever had it open closed it. */
export async function reopens(paths: readonly string[], ms = 10_000): Promise<void> {
  for (const path of paths) {
    const again = new LevelStore(undefined, path);
    await settlesWithin(again.ready, ms, `reopening ${path}`);
    await again.close();
  }
}
