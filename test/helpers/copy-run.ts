/**
 * The store copy tests' shared steps (`copy1`, src/node/sync/store-copy.ts):
 * link a new server to its source and take the run that follows, and make a
 * source answer copy requests its own way (a modified peer over the real link).
 */
import type { ToolDb } from "../../src/node/tooldb.js";
import type { PeerSession } from "../../src/network/peer-session.js";
import type { SyncMessage } from "../../src/records/messages.js";
import type { RangeSyncRun } from "../../src/node/sync/range-sync.js";
import { linkServers } from "./nodes.js";

/** The next run `db` reports (range sync's `done`). */
export function nextRun(db: ToolDb): Promise<RangeSyncRun> {
  return new Promise((resolve) => db.sync.range!.once("done", resolve));
}

/** Links `fresh` to `source` (the dialer is `fresh`) and resolves the first run `fresh` reports: the copy's, on an empty store. */
export async function copyRun(fresh: ToolDb, source: ToolDb, ms = 120_000): Promise<RangeSyncRun> {
  const run = nextRun(fresh);
  await linkServers(fresh, source, ms);
  return run;
}

/** Replaces how `source` answers copy requests; everything else it answers honestly (`honest` answers this one so too). */
export function onCopy(source: ToolDb, answer: (message: SyncMessage & { after?: string }, from: PeerSession, honest: () => void) => void): void {
  const range = source.sync.range!;
  const honest = range.handle.bind(range);
  range.handle = (message, from) => {
    if (message.type !== "syncCopy") return honest(message, from);
    answer(message, from, () => void honest(message, from));
    return undefined;
  };
}
