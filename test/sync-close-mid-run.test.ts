/**
 * A node closed while its catch-up runs: the run ends (its requests are
 * dropped with the link), and the running-syncs count (the `sync_running`
 * gauge) goes back to 0. Before, it was counted down only on the run's
 * "done" event, which never fires after close, so it stayed at 1.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { ToolDb } from "../src/index.js";
import { closeAll, linkServers, startServer, waitUntil } from "./helpers/nodes.js";
import { seed, signedRecords } from "./helpers/signed-records.js";

const T = 60_000;

describe("closing a server during its catch-up", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("counts the interrupted run as no longer running", { timeout: 2 * T }, async () => {
    const source = await startServer({ topic: "close-mid-run", handshakeTimeout: 30_000 });
    const fresh = await startServer({ topic: "close-mid-run", handshakeTimeout: 30_000, maxMessageBytes: 64 * 1024 });
    nodes.push(source, fresh);
    await seed(source, await signedRecords(10_000, "r/", Date.now() - 10_000_000));
    await linkServers(fresh, source, T); // the dialing side runs the catch-up
    await waitUntil(() => fresh.syncProgress.running === 1, T, "the catch-up to start");
    await fresh.close();
    await waitUntil(() => fresh.syncProgress.running === 0, T, "the interrupted run to be counted down (before: 1 for ever)");
    assert.equal(fresh.syncProgress.completed, 0, "the interrupted run did not report itself as done");
  });
});
