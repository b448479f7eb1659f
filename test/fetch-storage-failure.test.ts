/**
 * A catch-up whose store fails its writes (a full disk) stops, and once the
 * store writes again the next run brings everything: no record of the
 * failed run is left half-admitted in the duplicate gate, where a later copy
 * would wait for it for ever and hold the run (and the link's puts) with it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type ToolDb, type ToolDbOptions } from "../src/index.js";
import type { RangeSyncRun } from "../src/node/sync/range-sync.js";
import type { RecordIntake } from "../src/node/record-intake.js";
import { MemoryStore } from "../src/stores/memory-store.js";
import { closeAll, linkServers, startServer, waitUntil } from "./helpers/nodes.js";
import { contents, seed, signedRecords } from "./helpers/signed-records.js";

const T = 120_000;
/** How long the healed run may take here (seconds on a loaded box); the hang this guards against is for ever. */
const HEALED_MS = 60_000;

/** A memory store whose writes fail while `failing` is set, as a full disk's do. */
let failing = false;
class FailingStore extends MemoryStore {
  protected override _put(key: string, value: string): Promise<void> {
    return failing ? Promise.reject(new Error("ENOSPC: no space left on device (test)")) : super._put(key, value);
  }
}

describe("a catch-up into a store that fails its writes", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("stops, leaves nothing in the duplicate gate, and the next run after the store recovered brings every record", { timeout: T }, async () => {
    // The same first round asked again is refused for repeatWindowMs (60 s by default; not what this tests).
    const opts: Partial<ToolDbOptions> = { topic: "fetch-failure", handshakeTimeout: 30_000, rangeSync: { budget: { repeatWindowMs: 200 } } };
    const a = await startServer(opts);
    const b = await startServer({ ...opts, storageAdapter: FailingStore });
    nodes.push(a, b);
    const total = 2000;
    const records = await signedRecords(total, "f/", Date.now() - 10_000_000);
    await seed(a, records);
    const runs: RangeSyncRun[] = [];
    b.sync.range!.on("done", (run) => runs.push(run));
    const gate = (b as unknown as { intake: RecordIntake }).intake.gate;

    failing = true;
    try {
      await linkServers(b, a, T);
      await waitUntil(() => runs.length > 0, T, "the failing run ended");
      assert.equal(runs[0]!.complete, false, "the run stopped at the failed writes");
      // Every record the run admitted was merged (and failed) before the run ended.
      await waitUntil(() => gate.size === 0, 10_000, `duplicate gate empty (holds ${gate.size})`);
    } finally {
      failing = false;
    }

    // The next link runs again: every record the failed run had admitted is fetched and stored now.
    const before = runs.length;
    for (const p of b.network.peers) p.connection.close(1000, "test: the store writes again");
    await waitUntil(() => runs.slice(before).some((r) => r.complete), HEALED_MS, "a complete run after the store recovered");
    const held = await contents(b);
    assert.equal(held.size, total);
    for (const r of records) assert.equal(held.get(r.k), r.h, `b holds ${r.k}`);
    assert.equal(gate.size, 0);
  });
});
