/**
 * Asking every server of the campaign what it stores, and the checkpoints:
 * between faults, once every fault so far has healed, the time until every
 * write logged before then is on every server, while the clients go on
 * writing. The final check (after the last fault) also requires the servers
 * to hold the same record per key; a checkpoint cannot, writes are in flight.
 */
import { type CampaignLog, type LoggedWrite, type ServerDump, covers } from "./campaign-log.js";
import type { Cluster } from "./cluster.js";
import { SlowTrace } from "./slow-trace.js";

/** Pause between two rounds of dumps while waiting for convergence. */
const POLL_MS = 250;
const DUMP_TIMEOUT_MS = 20_000;

export interface Check {
  converged: boolean;
  lost: number;
  lostUnacked: number;
  divergent: number;
  examples: string[];
  /** Each server's records (undefined for one that did not answer). */
  dumps: Array<ServerDump | undefined>;
  unreachable: string[];
}

/** Asks every server for its records; counts `writes` missing somewhere and (with `sameRecords`) keys whose records differ. */
export async function checkServers(cluster: Cluster, writes: readonly LoggedWrite[], sameRecords = true): Promise<Check> {
  const unreachable: string[] = [];
  const dumps = await Promise.all(
    cluster.servers.map(async (s): Promise<ServerDump | undefined> => {
      try {
        return new Map((await s.ask({ type: "dump" }, "dump", DUMP_TIMEOUT_MS)).records.map(([k, h, t]) => [k, [h, t] as [string, number]]));
      } catch {
        unreachable.push(s.name); // fails the seed on its own; its writes are not counted missing
        return undefined;
      }
    }),
  );
  let lost = 0;
  let lostUnacked = 0;
  const examples: string[] = [];
  for (const w of writes) {
    const missing = dumps.findIndex((d) => d !== undefined && !covers(d.get(w.key), w));
    if (missing < 0) continue;
    if (!w.acked) {
      lostUnacked++;
      continue;
    }
    lost++;
    if (examples.length < 5) examples.push(`${w.key} (t ${w.t}) not on ${cluster.servers[missing]!.name}`);
  }
  let divergent = 0;
  if (sameRecords) {
    const answered = dumps.filter((d) => d !== undefined);
    const keys = new Set(answered.flatMap((d) => [...d.keys()]));
    for (const key of keys) {
      const hashes = new Set(answered.map((d) => d.get(key)?.[0]));
      if (hashes.size > 1) divergent++;
    }
  }
  const converged = unreachable.length === 0 && lost === 0 && lostUnacked === 0 && divergent === 0;
  return { converged, lost, lostUnacked, divergent, examples, dumps, unreachable };
}

/** Checks until converged or the deadline; returns the last check. `trace` sees each check (and when it began). */
export async function checkUntil(deadline: number, check: () => Promise<Check>, trace?: SlowTrace): Promise<Check> {
  const once = async () => {
    const began = Date.now();
    const result = await check();
    trace?.observe(result, began);
    return result;
  };
  let last = await once();
  while (!last.converged && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    last = await once();
  }
  return last;
}

export interface Checkpoint {
  /** Faults injected before it. */
  afterFaults: number;
  /** Writes logged before it (all of them must reach every server). */
  writes: number;
  /** From the last fault healed to every one of those writes on every server (or to the deadline). */
  ms: number;
  converged: boolean;
  /** The fault that healed last before it ("kill-server s2"). */
  lastHealed: string;
  /** Why it failed (empty when it converged). */
  failureLog: string;
  /** Why it took over SLOW_MS: faults/slow-trace.ts (empty when it did not). */
  slowLog: string;
}

/**
 * Runs one checkpoint: call it once every fault injected so far has healed
 * (`healedAt`: when the last one did). No fault is injected meanwhile.
 */
export async function checkpoint(cluster: Cluster, campaignLog: CampaignLog, afterFaults: number, healedAt: number, timeoutMs: number, slowMs?: number): Promise<Checkpoint> {
  const writes = campaignLog.writes.slice();
  const lastHealed = campaignLog.lastHealed();
  const trace = new SlowTrace(cluster, campaignLog, writes, healedAt, slowMs);
  const check = await checkUntil(healedAt + timeoutMs, () => checkServers(cluster, writes, false), trace);
  const ms = Date.now() - healedAt;
  const slowLog = await trace.report(`checkpoint after ${afterFaults} faults (the last to heal: ${lastHealed})`, ms, check.converged);
  const names = cluster.servers.map((s) => s.name);
  const failureLog = check.converged
    ? ""
    : campaignLog.report(names, check.dumps, [], [`checkpoint after ${afterFaults} faults: ${writes.length} writes not all on every server ${ms} ms after every fault healed`], writes.length);
  return { afterFaults, writes: writes.length, ms, converged: check.converged, lastHealed, failureLog, slowLog };
}
