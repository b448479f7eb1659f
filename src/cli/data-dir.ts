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
  /** JSON: servers verified before. */
  peers: string;
}

export function dataPaths(dir: string): DataPaths {
  return { records: dir, keys: keyStoreName(dir), sync: syncIndexName(dir), peers: `${dir}.peers` };
}

/** `serve --repair`: LevelDB's repair on each damaged LevelDB directory of a data directory, saying what it does. */
export async function repairDamaged(paths: DataPaths, out: Out): Promise<void> {
  for (const dir of [paths.records, paths.keys, paths.sync]) {
    const state = await checkLevelDir(dir);
    if (state.kind !== "damaged") {
      out(`--repair: ${dir} ${state.kind === "healthy" ? "is whole" : "holds no database yet"}, left as is`);
      continue;
    }
    out(`--repair: ${dir} is damaged (${state.problems.join("; ")}); repairing`);
    await LevelStore.repair(dir);
    const after = await checkLevelDir(dir);
    if (after.kind === "damaged") throw new Error(`--repair could not repair ${dir}: ${after.problems.join("; ")}`);
    out(`--repair: ${dir} repaired`);
  }
}
