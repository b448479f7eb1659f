import assert from "node:assert/strict";
import { it } from "node:test";
import { CampaignLog } from "../faults/campaign-log.js";
import type { Cluster } from "../faults/cluster.js";
import type { WorkerDiag } from "../faults/protocol.js";
import { SlowTrace } from "../faults/slow-trace.js";

// The fault campaign's trace of a slow checkpoint (faults/slow-trace.ts), on a stub cluster: the times are the
// checks' own (no clock, no sleep), the workers' diagnostics canned.
const HEALED = Date.now() + 60_000;
const sync = { running: 1, waiting: 0, completed: 3, keysListed: 0, keysFetched: 0, keysChanged: 0, runs: { changes: 1, range: 1, copy: 0, incomplete: 1 }, recordsPushed: 0, recordsFetched: 0 };

function setup() {
  const log = new CampaignLog();
  for (const name of ["s0", "s1", "c0"]) log.named(`id-${name}`, name);
  log.write({ client: "c0", key: "c0-1", h: "aaaaaaaaaa", t: 10, acked: true, by: ["id-s0"] });
  log.write({ client: "c0", key: "c0-2", h: "bbbbbbbbbb", t: 11, acked: false, by: [] });
  const diags: Record<string, WorkerDiag> = {
    s0: { at: HEALED, links: [{ id: "id-s1", server: true, out: true, rbsr: true, pushHeldMs: 2500 }, { id: "id-c0", server: false, out: false, rbsr: false, pushHeldMs: 0 }], sync, outbox: [], log: [] },
    s1: { at: HEALED, links: [{ id: "id-s0", server: true, out: false, rbsr: true, pushHeldMs: 0 }], sync, outbox: [], log: [[HEALED - 60_000, "too old"], [HEALED + 1500, "node:server range sync with id-s0: incomplete (range)"]] },
    c0: { at: HEALED, links: [{ id: "id-s0", server: true, out: true, rbsr: false, pushHeldMs: 0 }], outbox: [{ key: "c0-2", h: "bbbbbbbbbb", need: 1, confirmedBy: [], waitingOn: ["id-s0"], tries: 3, refusals: 0, held: false, suspect: false, provisional: false }], log: [] },
  };
  let asks = 0;
  const worker = (name: string) => ({ name, ask: async () => (asks++, { type: "diag", state: diags[name] }) });
  const servers = [worker("s0"), worker("s1")];
  const cluster = { servers, workers: [...servers, worker("c0")] } as unknown as Cluster;
  const trace = new SlowTrace(cluster, log, log.writes.slice(), HEALED);
  const dump = (...records: Array<[string, string, number]>) => new Map(records.map(([k, h, t]) => [k, [h, t] as [string, number]]));
  const both = dump(["c0-1", "aaaaaaaaaa", 10], ["c0-2", "bbbbbbbbbb", 11]);
  const check = (s1: Map<string, [string, number]>, converged: boolean) => ({ converged, dumps: [both, s1], divergent: 0, unreachable: [] });
  return { trace, check, both, dump, asks: () => asks };
}

it("a slow checkpoint's trace: what was missing where at each mark, when it arrived, the workers' state and the lagging server's log", { timeout: 10_000 }, async () => {
  const { trace, check, both, dump, asks } = setup();
  trace.observe(check(dump(), false), HEALED + 300);
  assert.equal(asks(), 0, "no worker is asked before the first mark");
  trace.observe(check(dump(), false), HEALED + 1200);
  trace.observe(check(dump(["c0-2", "bbbbbbbbbb", 11]), false), HEALED + 2000);
  trace.observe(check(both, true), HEALED + 4000);
  const report = await trace.report("checkpoint after 25 faults", 4100, true);
  if (process.env.SHOW_TRACE) console.log(report);
  const lines = report.split("\n");
  assert.match(lines[0]!, /^slow: checkpoint after 25 faults: every write on every server 4100 ms after every fault healed; first look at 0\.3 s: 2 writes missing$/);
  assert.match(report, /arrivals on s1: 2 missing at the first look; arrived 0 by 1\.0 s, 1 by 3\.0 s, 2 by 10\.0 s; last at 4\.0 s \(c0 c0-1 aaaaaaaa t 10, acked (60\.0|59\.9) s before the heal by s0\)/);
  assert.doesNotMatch(report, /arrivals on s0/);
  assert.match(report, /at 1\.2 s: 2 writes missing \(1 acked, 1 ack timed out\): lacking on s1 2; writers c0 2; still in the writer's outbox 1 \(provisional 0\)/);
  assert.match(report, /c0 c0-2 bbbbbbbb t 11, ack timed out .*: lacks s1; has s0; in the outbox \(confirmed by none, waiting on s0, tries 3\)/);
  assert.match(report, /c0 c0-1 aaaaaaaa t 10.*: lacks s1; has s0; not in the outbox/);
  assert.match(report, /s0: links s1 out pushes held 2\.5 s, c0; sync running 1, waiting 0; runs ended: changes 1, range 1, copy 0, incomplete 1/);
  assert.match(report, /c0: links s0 out unproven; outbox 1 \(provisional 0\)/);
  assert.match(report, /s1's log from 5\.0 s before the heal \(1 lines, the last 1\):\n {4}\+1\.5 s node:server range sync with s0: incomplete \(range\)/);
  assert.doesNotMatch(report, /too old/);
});

it("a checkpoint within the bound prints no trace and asks no worker", { timeout: 10_000 }, async () => {
  const { trace, check, both, dump, asks } = setup();
  trace.observe(check(dump(), false), HEALED + 300);
  trace.observe(check(both, true), HEALED + 900);
  assert.equal(await trace.report("checkpoint after 25 faults", 950, true), "");
  assert.equal(asks(), 0);
});
