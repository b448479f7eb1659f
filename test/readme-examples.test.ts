import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { codeBlocks, runExample } from "./helpers/doc-examples.js";

describe("README examples (and the API pages' examples that moved out of it) run as written", () => {
  const blocks = codeBlocks("README.md");

  // The README keeps "Use it"; its other examples moved with their sections: "Using Hyperswarm" and
  // "Discovery mechanisms" to docs/api-discovery.md (run in test/hyperswarm-guide.test.ts, beside a
  // HyperDHT testnet, and test/discovery-restart.test.ts), "CRDT documents" to docs/api.md (below).
  it("has the two examples of Use it; the API pages have the other three", () => {
    assert.equal(blocks.length, 2);
    assert.equal(codeBlocks("docs/api-discovery.md").length, 2);
    assert.equal(codeBlocks("docs/api.md").length, 1);
  });

  it("example 1: server and client on loopback", async () => {
    const out = await runExample("readme-1", blocks[0]!);
    assert.match(out, /greeting is now hello/);
    assert.match(out, /^hello$/m);
  });

  it("example 2: DHTServer and DHTClient on a private DHT", async () => {
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    try {
      const out = await runExample("readme-2", blocks[1]!, { DHT_BOOTSTRAP: `127.0.0.1:${seed.address().port}` });
      assert.match(out, /^hello$/m);
    } finally {
      await seed.close();
    }
  });

  it("docs/api.md: a CRDT document", async () => {
    const out = await runExample("readme-5", codeBlocks("docs/api.md").find((b) => b.includes("Crdt"))!);
    assert.match(out, /^\{"theme":"dark"\}$/m);
  });
});
