import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { codeBlocks, runExample } from "./helpers/doc-examples.js";

describe("README examples run as written", () => {
  const blocks = codeBlocks("README.md");

  // The third ("Using Hyperswarm") runs in test/hyperswarm-guide.test.ts, beside a HyperDHT testnet;
  // the fourth ("Discovery mechanisms") in test/discovery-restart.test.ts.
  it("has the five examples", () => assert.equal(blocks.length, 5));

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

  it("example 5: a CRDT document", async () => {
    const out = await runExample("readme-5", blocks.find((b) => b.includes("Crdt"))!);
    assert.match(out, /^\{"theme":"dark"\}$/m);
  });
});
