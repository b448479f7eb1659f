/**
 * Discovery mechanisms against the shared compliance suite (bootstrap list,
 * peer cache, mainline DHT, HyperDHT; LAN runs in network namespaces in
 * discovery-lan.test.ts), then the merged discovery and the peer cache's
 * own rules. Loopback and local testnets only.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ToolDb } from "../../src/index.js";
import { Discovery } from "../../src/discovery/discovery.js";
import { BootstrapListMechanism } from "../../src/discovery/mechanisms/bootstrap-list-mechanism.js";
import { HyperdhtMechanism } from "../../src/discovery/mechanisms/hyperdht-mechanism.js";
import { MainlineMechanism } from "../../src/discovery/mechanisms/mainline-mechanism.js";
import type { DiscoveryMechanism, MechanismSink } from "../../src/discovery/mechanisms/mechanism.js";
import { MergedDiscovery } from "../../src/discovery/mechanisms/merged-discovery.js";
import { PeerCache } from "../../src/discovery/mechanisms/peer-cache.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";
import { HyperswarmNetwork } from "../../src/network/hyperswarm-network.js";
import { LevelStore } from "../../src/stores/level-store.js";
import { MemoryStore } from "../../src/stores/memory-store.js";
import { discoveryMechanismSuite } from "../compliance/discovery-suite.js";
import { createDhtTestnet } from "../helpers/dht-testnet.js";
import { hyperTestnet, swarmOn } from "../helpers/hyperdht-testnet.js";
import { waitFor } from "../helpers/wait.js";

function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-mech-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

discoveryMechanismSuite("BootstrapListMechanism", {
  create: async () => ({
    mechanism: new BootstrapListMechanism([{ host: "127.0.0.2", port: 9000 }]),
    expect: { host: "127.0.0.2", port: 9000 },
    cleanup: async () => undefined,
  }),
});

discoveryMechanismSuite("PeerCache (restored from its store)", {
  create: async () => {
    const tmp = tempDir();
    const first = new PeerCache(new LevelStore(undefined, join(tmp.dir, "peers")));
    await first.load();
    first.remember({ host: "127.0.0.3", port: 9100 }, "some-node-address");
    await first.stop();
    return {
      mechanism: new PeerCache(new LevelStore(undefined, join(tmp.dir, "peers"))),
      expect: { host: "127.0.0.3", port: 9100 },
      cleanup: async () => tmp.remove(),
    };
  },
});

discoveryMechanismSuite("MainlineMechanism (bittorrent-dht testnet)", {
  create: async () => {
    const net = await createDhtTestnet(3);
    const announcer = new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.2", fastInterval: 100 });
    announcer.join("mech-topic", 9200);
    await waitFor(announcer, "announced", 10_000);
    return {
      mechanism: new MainlineMechanism(new Discovery({ bootstrap: net.bootstrap, host: "127.0.0.3", fastInterval: 100 }), "mech-topic", undefined),
      expect: { host: "127.0.0.2", port: 9200 },
      cleanup: async () => {
        await announcer.destroy();
        await net.destroy();
      },
    };
  },
});

discoveryMechanismSuite("HyperdhtMechanism (HyperDHT testnet)", {
  create: async () => {
    const testnet = await hyperTestnet(3);
    const db = new ToolDb({ topic: "mech-hyperdht", networkAdapter: swarmOn(testnet) });
    await db.ready;
    return {
      mechanism: new HyperdhtMechanism(db.network as HyperswarmNetwork),
      cleanup: async () => {
        await db.close();
        await testnet.destroy();
      },
    };
  },
});

/** A mechanism driven by the test. */
class ManualMechanism implements DiscoveryMechanism {
  sink: MechanismSink | undefined;
  refreshed = 0;
  constructor(readonly name: string) {}
  start(sink: MechanismSink): void {
    this.sink = sink;
  }
  refresh(): void {
    this.refreshed++;
  }
  async stop(): Promise<void> {
    this.sink = undefined;
  }
}

describe("MergedDiscovery", () => {
  it("de-duplicates candidates by address across mechanisms, keeps who found each first, and settles once every mechanism did its first round", async () => {
    const a = new ManualMechanism("a");
    const b = new ManualMechanism("b");
    const merged = new MergedDiscovery("t", [a, b]);
    const peers: Array<[PeerAddress, string]> = [];
    let settled = 0;
    merged.on("peer", (_t, p, source) => peers.push([p, source]));
    merged.on("settled", () => settled++);
    await merged.start();
    a.sink!.found({ host: "127.0.0.2", port: 1000 });
    b.sink!.found({ host: "127.0.0.2", port: 1000 });
    b.sink!.found({ host: "127.0.0.3", port: 1000 });
    a.sink!.roundDone();
    assert.equal(merged.settled, false);
    assert.equal(settled, 0);
    b.sink!.roundDone();
    b.sink!.roundDone();
    assert.equal(settled, 1);
    assert.deepEqual(peers, [
      [{ host: "127.0.0.2", port: 1000 }, "a"],
      [{ host: "127.0.0.3", port: 1000 }, "b"],
    ]);
    assert.deepEqual(merged.peers("t"), [{ host: "127.0.0.2", port: 1000 }, { host: "127.0.0.3", port: 1000 }]);
    merged.refresh("t");
    assert.deepEqual([a.refreshed, b.refreshed], [1, 1]);
    // forget: the address may be reported again.
    merged.forget("t", "127.0.0.2", 1000);
    b.sink!.found({ host: "127.0.0.2", port: 1000 });
    assert.deepEqual(peers.at(-1), [{ host: "127.0.0.2", port: 1000 }, "b"]);
    await merged.stop();
    await merged.stop();
  });

  it("a mechanism that fails to start does not hold `settled` back; no mechanism at all settles at once", async () => {
    const broken: DiscoveryMechanism = { name: "broken", start: () => Promise.reject(new Error("no multicast route")), stop: async () => undefined };
    const merged = new MergedDiscovery("t", [broken]);
    const settled = waitFor(merged, "settled", 1000);
    await merged.start();
    await settled;
    const empty = new MergedDiscovery("t", []);
    const emptySettled = waitFor(empty, "settled", 1000);
    await empty.start();
    await emptySettled;
  });
});

describe("PeerCache", () => {
  it("offers the most recently seen first, evicts after maxFailures failed dials, and survives a damaged entry", async () => {
    let now = 1000;
    const store = new MemoryStore(undefined, "peer-cache-test");
    const cache = new PeerCache(store, { maxFailures: 2, now: () => now });
    await cache.load();
    cache.remember({ host: "127.0.0.2", port: 1 }, "A");
    now = 2000;
    cache.remember({ host: "127.0.0.3", port: 2 }, "B");
    assert.deepEqual(cache.list().map((p) => p.address), ["B", "A"]);
    cache.failed({ host: "127.0.0.3", port: 2 });
    assert.equal(cache.list().length, 2);
    cache.remember({ host: "127.0.0.3", port: 2 }, "B"); // a verified link resets failures
    cache.failed({ host: "127.0.0.3", port: 2 });
    assert.equal(cache.list().length, 2);
    cache.failed({ host: "127.0.0.3", port: 2 });
    assert.deepEqual(cache.list().map((p) => p.address), ["A"]);
    const sink = { found: [] as PeerAddress[], rounds: 0 };
    await cache.start({ found: (p) => sink.found.push(p), roundDone: () => sink.rounds++ });
    assert.deepEqual(sink.found, [{ host: "127.0.0.2", port: 1 }]);
    await cache.stop();

    const damaged = new MemoryStore(undefined, "peer-cache-damaged");
    await damaged.put("peer-cache", "{not json");
    const fromDamaged = new PeerCache(damaged);
    await fromDamaged.load();
    assert.deepEqual(fromDamaged.list(), []);
    await fromDamaged.stop();
  });
});
