import assert from "node:assert/strict";
import { it } from "node:test";
import { formatResult, runCampaign } from "../faults/campaign.js";

// The quick campaign (`npm run faults` runs the long one): server and client
// processes on loopback, faults from a fixed seed while clients write with
// acknowledged puts. Bounded: 50 faults, every wait inside has a deadline.
it("quick fault campaign: 50 faults, no acknowledged write lost, servers converge, nothing crashes", { timeout: 240_000 }, async () => {
  const lines: string[] = [];
  const result = await runCampaign({ faults: 50, seed: 7, log: (line) => lines.push(line) });
  const report = formatResult(result);
  console.log(report);
  assert.equal(result.faultsInjected, 50);
  assert.ok(result.writesAcknowledged > 0, "clients wrote during the campaign");
  assert.deepEqual(result.crashes, [], report);
  assert.equal(result.writesLost, 0, report);
  assert.equal(result.writesUnconfirmed, 0, report);
  assert.equal(result.unacknowledgedLost, 0, report);
  assert.ok(result.byKind.blackout >= 1, "every server was down at once at least once");
  assert.ok(result.converged, report);
  // Between faults too: after the first 25 faults healed, every write so far reached every server.
  assert.equal(result.checkpoints.length, 1, report);
  assert.ok(result.checkpoints.every((c) => c.converged && c.writes > 0), report);
});
