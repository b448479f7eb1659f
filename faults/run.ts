/**
 * `npm run faults [-- --faults N --seed S]`: the long fault campaign
 * (default 500 faults, seed 1). Exits non-zero when an acknowledged write
 * was lost, a client kept an unconfirmed write, the servers did not converge, or a process crashed.
 */
import { formatResult, runCampaign } from "./campaign.js";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a non-negative integer`);
  return value;
}

const faults = flag("faults", 500);
const seed = flag("seed", 1);
const out = (line: string) => process.stdout.write(`${line}\n`);
out(`fault campaign: ${faults} faults from seed ${seed}, all on loopback`);
const result = await runCampaign({ faults, seed, log: out, convergeTimeoutMs: 120_000 });
out(formatResult(result));
process.exitCode = result.writesLost === 0 && result.unacknowledgedLost === 0 && result.writesUnconfirmed === 0 && result.converged && result.crashes.length === 0 ? 0 : 1;
