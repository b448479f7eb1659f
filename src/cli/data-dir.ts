import { rm } from "node:fs/promises";
import { errorText } from "../base/errors.js";
import { keyStoreName, syncIndexName } from "../node/options.js";
import { checkLevelDir } from "../stores/leveldb-check.js";
import { LevelStore } from "../stores/level-store.js";
import type { Out } from "./command.js";

/** What `serve --data DIR` keeps where. */
export interface DataPaths {
  /** LevelDB: the records. */
  records: string;
  /** LevelDB: the node's keys. */
  keys: string;
  /** LevelDB: the reconciliation index (rebuilt from the records when lost). */
  sync: string;
  /** LevelDB: the peer cache, servers verified before (only a cache: the DHT finds them again). */
  peers: string;
}

export function dataPaths(dir: string): DataPaths {
  return { records: dir, keys: keyStoreName(dir), sync: syncIndexName(dir), peers: `${dir}.peers` };
}

/**
 * `serve --repair`: LevelDB's repair on each damaged LevelDB directory of a
 * data directory, saying what it does. One that stays damaged fails the
 * start, except the peer cache: being only a cache, it is then removed and
 * made anew, empty.
 */
export async function repairDamaged(paths: DataPaths, out: Out): Promise<void> {
  for (const dir of [paths.records, paths.keys, paths.sync]) {
    const problem = await repairOne(dir, out);
    if (problem !== undefined) throw new Error(`--repair could not repair ${dir}: ${problem}`);
  }
  const problem = await repairOne(paths.peers, out);
  if (problem === undefined) return;
  await rm(paths.peers, { recursive: true, force: true });
  out(`--repair: ${paths.peers} could not be repaired (${problem}); removed, to be made anew empty (it only caches servers verified before: the DHT finds them again)`);
}

/** Repairs `dir` when it is damaged; what is still wrong with it afterwards, if anything. */
async function repairOne(dir: string, out: Out): Promise<string | undefined> {
  const state = await checkLevelDir(dir);
  if (state.kind !== "damaged") {
    out(`--repair: ${dir} ${state.kind === "healthy" ? "is whole" : "holds no database yet"}, left as is`);
    return undefined;
  }
  out(`--repair: ${dir} is damaged (${state.problems.join("; ")}); repairing`);
  try {
    await LevelStore.repair(dir);
    const after = await checkLevelDir(dir);
    if (after.kind === "damaged") return after.problems.join("; ");
  } catch (err) {
    return errorText(err);
  }
  out(`--repair: ${dir} repaired`);
  return undefined;
}
