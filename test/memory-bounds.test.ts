/**
 * A flood of valid messages from one raw `ws` peer: the server's dedup set
 * and request table stay within their caps, the peer is not punished, and
 * nothing crashes (a process-wide guard fails the test on an unhandled
 * rejection). Hostile input is test/bad-input.test.ts and test/bad-records.test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { waitFor, withTimeout } from "./helpers/wait.js";
import { portOf, startServer as startNodeServer } from "./helpers/nodes.js";
import { RawLink, openRawLinks as open } from "./helpers/raw-peer.js";
import type { ToolDbOptions } from "../src/node/options.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const TOPIC = "memory-bounds";
const T = 5000;

const unhandled = collectUnhandledRejections();

function startServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  return startNodeServer({ topic: TOPIC, ...opts });
}

const RawPeer = { connect: (port: number) => RawLink.connect(port, { topic: TOPIC }) };

describe("memory stays bounded under a flood of valid messages", () => {
  it("30,000 gets for missing keys: the dedup set and the request table stay within their caps", { timeout: 60_000 }, async (t) => {
    const dedupCapacity = 1000;
    const maxPendingRequests = 500;
    // About memory caps, not the message rate (test/limits.test.ts covers that).
    const srv = await startServer({ dedupCapacity, maxPendingRequests, limits: { messageRate: Infinity } });
    // A second server to forward misses to; it never has the keys, so every
    // forwarded get waits in `srv.requests` until it times out or is evicted.
    const other = await startServer();
    try {
      await srv.putData("precious", "original");
      const linked = waitFor(other, "peer-connect", T);
      srv.network.connectTo("127.0.0.1", portOf(other));
      await linked;

      let maxProcessed = 0;
      let maxRequests = 0;
      const addProcessed = srv.processed.add.bind(srv.processed);
      srv.processed.add = (v: string) => {
        const fresh = addProcessed(v);
        maxProcessed = Math.max(maxProcessed, srv.processed.size);
        return fresh;
      };
      const addRequest = srv.requests.add.bind(srv.requests);
      srv.requests.add = (...args: Parameters<typeof addRequest>) => {
        const added = addRequest(...args);
        maxRequests = Math.max(maxRequests, srv.requests.size);
        return added;
      };

      const peer = await RawPeer.connect(portOf(srv));
      const N = 30_000;
      for (let i = 0; i < N; i++) peer.send({ type: "get", id: `flood-${i}`, to: [], key: `missing-${i}` });
      // Frames on one link are handled in order: once the answer to a last
      // get arrives, every get before it went through dedup and forwarding.
      // It waits behind 30,000 gets: how long depends on the machine's load, so
      // it is bounded by the test's own timeout rather than the 5 s default.
      const last = await peer.get("precious", 50_000);
      assert.equal(last.v, "original");

      t.diagnostic(`max dedup set ${maxProcessed}/${dedupCapacity}, max pending requests ${maxRequests}/${maxPendingRequests}`);
      assert.ok(maxProcessed <= dedupCapacity, `dedup set reached ${maxProcessed}`);
      assert.equal(srv.processed.size, dedupCapacity, "the dedup set is full, not cleared");
      assert.ok(maxRequests > 0, "misses were forwarded");
      assert.ok(maxRequests <= maxPendingRequests, `request table reached ${maxRequests}`);
      assert.ok(srv.requests.size <= maxPendingRequests);
      assert.ok(other.processed.size <= other.options.dedupCapacity);
      assert.equal(peer.isClosed, false, "valid traffic is not punished");
      assert.deepEqual(unhandled.splice(0), []);
      peer.terminate();
    } finally {
      for (const p of open) p.terminate();
      open.clear();
      await withTimeout(Promise.all([srv.close(), other.close()]), T, "servers to close");
    }
  });
});
