/** Standalone: `node dist/bench/discovery-hostile-main.js [runs]` prints the discovery figures beside bogus announces. */
import { hostileDiscoveryBenchmark, printHostileFigures } from "./discovery-hostile.js";

const runs = Number(process.argv[2] ?? 3);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError("runs must be a positive integer");
printHostileFigures(await hostileDiscoveryBenchmark(runs), (line) => console.log(line));
