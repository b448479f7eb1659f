/**
 * `npm run faults [-- --faults N --seeds 1-5]`: the long fault campaign
 * (default 500 faults, seed 1), one seed after the other. Exits non-zero
 * when, on any seed, an acknowledged write was lost, a client kept an
 * unconfirmed write, the servers did not converge (at the end, or at a
 * checkpoint between faults), or a process crashed;
 * a failed seed prints the campaign's own log of why.
 */
import { formatResult, passed, runCampaign, type CampaignResult } from "./campaign.js";

const HELP = `npm run faults -- [options]

Servers and clients as separate processes on loopback; faults from a seeded
schedule while the clients write with acknowledged puts; then a check that no
acknowledged write was lost, every outbox emptied and every server holds the
same records; every 25 faults a checkpoint waits for the faults so far to
heal and times how long the writes until then take to reach every server.
Run it in a network namespace of its own, e.g.
  unshare -n sh -c 'ip link set lo up && exec npm run faults -- --seeds 1-5'

  --faults N        faults per seed (default 500)
  --seed S          one seed (default 1)
  --seeds LIST      several seeds, one after the other: 1-5, or 1,3,7
  --converge-ms MS  how long the servers may take to converge after the
                    clients' outboxes emptied (default 120000)
  --slow-ms MS      print the trace of a checkpoint (or the final
                    convergence) slower than this: what was missing where
                    at 1, 3 and 10 s, each worker's links, sync runs and
                    outbox, the lagging servers' logs (default 3000)
  --help            this text
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${HELP}`);
  process.exit(2);
}

function integer(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (raw === undefined || !Number.isInteger(value) || value < 0) fail(`--${name} takes a non-negative integer`);
  return value;
}

function seedList(raw: string | undefined): number[] {
  if (raw === undefined) fail("--seeds takes a list: 1-5 or 1,3,7");
  const seeds = raw.split(",").flatMap((part) => {
    const [from, to] = part.split("-");
    const first = integer("seeds", from);
    const last = to === undefined ? first : integer("seeds", to);
    if (last < first || last - first > 1000) fail(`--seeds: bad range ${part}`);
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  });
  return seeds;
}

function parse(argv: string[]): { faults: number; seeds: number[]; convergeMs: number; slowMs: number } {
  const options = { faults: 500, seeds: [1], convergeMs: 120_000, slowMs: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (arg === "--faults") options.faults = integer("faults", argv[++i]);
    else if (arg === "--seed") options.seeds = [integer("seed", argv[++i])];
    else if (arg === "--seeds") options.seeds = seedList(argv[++i]);
    else if (arg === "--converge-ms") options.convergeMs = integer("converge-ms", argv[++i]);
    else if (arg === "--slow-ms") options.slowMs = integer("slow-ms", argv[++i]);
    else fail(`unknown option ${arg}`);
  }
  return options;
}

const { faults, seeds, convergeMs, slowMs } = parse(process.argv.slice(2));
const out = (line: string) => process.stdout.write(`${line}\n`);
const results: CampaignResult[] = [];
for (const seed of seeds) {
  out(`fault campaign: ${faults} faults from seed ${seed}, all on loopback`);
  const result = await runCampaign({ faults, seed, log: out, convergeTimeoutMs: convergeMs, slowMs });
  results.push(result);
  out(formatResult(result));
  out("");
}
if (results.length > 1) {
  out("seed | result | acknowledged | lost | left in outboxes | converged after the last fault healed | checkpoints converged, worst | took");
  for (const r of results) {
    const worst = Math.max(0, ...r.checkpoints.map((c) => c.ms));
    const points = `${r.checkpoints.filter((c) => c.converged).length}/${r.checkpoints.length}, ${(worst / 1000).toFixed(1)} s`;
    out(`${r.seed} | ${passed(r) ? "pass" : "FAIL"} | ${r.writesAcknowledged} (+${r.writesUnacknowledged} timed out) | ${r.writesLost + r.unacknowledgedLost} | ${r.writesUnconfirmed} | ${r.converged ? `${(r.convergeMs / 1000).toFixed(1)} s` : "no"} | ${points} | ${(r.durationMs / 1000).toFixed(0)} s`);
  }
}
process.exitCode = results.every(passed) ? 0 : 1;
