/** Routing-table persistence: save atomically, restart from the saved nodes alone. */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Discovery, loadDhtState, saveDhtState, type DhtState } from "../../src/entries/discovery.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";
import { createDhtTestnet, waitForEvent, type DhtTestnet } from "../helpers/dht-testnet.js";

let net: DhtTestnet;
let dir: string;

before(async () => {
  net = await createDhtTestnet(4);
  dir = await mkdtemp(join(tmpdir(), "tooldb-dht-state-"));
});
after(async () => {
  await net.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe("routing-table state", () => {
  it("saves atomically and a restart with no bootstrap rejoins from the saved nodes", async () => {
    const statePath = join(dir, "dht.json");
    const common = { timeout: 500, fastInterval: 50, lookupTimeout: 3000 };

    const first = new Discovery({ ...common, bootstrap: net.bootstrap, host: "127.0.0.3", statePath });
    try {
      await waitForEvent(first, "ready", 5000);
      const count = await first.saveState();
      assert.ok(count >= 3, `saved ${count} nodes`);
      const saved = JSON.parse(await readFile(statePath, "utf8")) as DhtState;
      assert.equal(saved.version, 1);
      assert.equal(saved.nodes.length, count);
      for (const n of saved.nodes) assert.equal(n.host, "127.0.0.1");
      assert.deepEqual(await readdir(dir), ["dht.json"], "no temp file left behind");
    } finally {
      await first.destroy();
    }

    // a server on the testnet, and a restarted client that knows only the saved table
    const server = new Discovery({ ...common, bootstrap: net.bootstrap, host: "127.0.0.2" });
    const restarted = new Discovery({ ...common, bootstrap: false, host: "127.0.0.3", statePath });
    try {
      const found = waitForEvent<[string, PeerAddress]>(restarted, "peer", 5000);
      server.join("state-topic", 7100);
      restarted.join("state-topic");
      assert.deepEqual((await found)[1], { host: "127.0.0.2", port: 7100 });
    } finally {
      await Promise.all([server.destroy(), restarted.destroy()]);
    }
    // destroy() saved the table again
    assert.ok(loadDhtState(statePath).length >= 3);
  });

  it("without saved state, a node with bootstrap: false finds nothing (control)", async () => {
    const server = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.2", timeout: 500, fastInterval: 50 });
    const lonely = new Discovery({ bootstrap: false, host: "127.0.0.3", timeout: 500, fastInterval: 50 });
    try {
      const peers: unknown[] = [];
      lonely.on("peer", (...args) => peers.push(args));
      server.join("state-control", 7101);
      lonely.join("state-control");
      await waitForEvent(server, "announced", 5000);
      let n = 0;
      await waitForEvent(lonely, "lookup", 5000, () => ++n >= 5);
      assert.deepEqual(peers, []);
    } finally {
      await Promise.all([server.destroy(), lonely.destroy()]);
    }
  });

  it("a missing or corrupt state file is ignored", async () => {
    assert.deepEqual(loadDhtState(join(dir, "missing.json")), []);
    const corrupt = join(dir, "corrupt.json");
    await writeFile(corrupt, "{not json");
    assert.throws(() => loadDhtState(corrupt));
    const d = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.3", statePath: corrupt, timeout: 500 });
    await waitForEvent(d, "ready", 5000);
    await d.destroy();
    // destroy replaced the corrupt file with the current table
    assert.ok(loadDhtState(corrupt).length > 0);
  });

  it("keeps only valid IPv4 entries, capped", async () => {
    const path = join(dir, "filtered.json");
    const nodes = [
      { host: "127.0.0.1", port: 1234 },
      { host: "not-an-ip", port: 1 },
      { host: "127.0.0.1", port: 0 },
      { host: "::1", port: 5 },
      ...Array.from({ length: 100 }, (_, i) => ({ host: "10.0.0.1", port: 1000 + i })),
    ];
    assert.equal(await saveDhtState(path, nodes), 64);
    const loaded = loadDhtState(path);
    assert.equal(loaded.length, 64);
    assert.deepEqual(loaded[0], { host: "127.0.0.1", port: 1234 });
  });
});
