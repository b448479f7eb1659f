/** Standalone: `node dist/bench/discovery-main.js [runs]` prints the discovery figures. */
import { discoveryBenchmark, printDiscoveryFigures } from "./discovery.js";

const runs = Number(process.argv[2] ?? 9);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError("runs must be a positive integer");
printDiscoveryFigures(await discoveryBenchmark(runs), (line) => console.log(line));
