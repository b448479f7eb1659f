/**
 * A private HyperDHT on loopback (hyperdht's own testnet) and the transport
 * bound to it. Every node gets the bootstrap explicitly and binds 127.0.0.1:
 * nothing contacts hyperdht's public nodes.
 */
import { after, before } from "node:test";
import createTestnet, { type Testnet } from "hyperdht/testnet.js";
import type { NetworkAdapterConstructor } from "../../src/network/network-adapter.js";
import { HyperswarmNetwork, type HyperswarmNetworkOptions } from "../../src/network/hyperswarm-network.js";
import { ToolDb, type ToolDbOptions } from "../../src/index.js";
import { FAST } from "./nodes.js";
import { closedAfterEachTest } from "./raw-peer.js";

export type { Testnet } from "hyperdht/testnet.js";

export async function hyperTestnet(size = 3): Promise<Testnet> {
  return createTestnet(size, { host: "127.0.0.1" });
}

/** One testnet for a test file: made before its tests, destroyed after them; call the getter inside a test. */
export function fileTestnet(size = 3): () => Testnet {
  let testnet: Testnet | undefined;
  before(async () => {
    testnet = await hyperTestnet(size);
  });
  after(async () => {
    await testnet?.destroy();
  });
  return () => {
    if (!testnet) throw new Error("the testnet is made in the file's before hook");
    return testnet;
  };
}

/** HyperswarmNetwork on `testnet`, its DHT socket on 127.0.0.1. */
export function swarmOn(testnet: Testnet, opts: HyperswarmNetworkOptions = {}): NetworkAdapterConstructor {
  return HyperswarmNetwork.with({ bootstrap: testnet.bootstrap, dhtHost: "127.0.0.1", ...opts });
}

/** `host:port,…` for TOOLDB_HYPERDHT_BOOTSTRAP. */
export function bootstrapEnv(testnet: Testnet): string {
  return testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(",");
}

/** For a describe block: makes ToolDb nodes on loopback (FAST timings, `opts` over them), closed after each test (within `ms`). */
export function loopbackNodes(ms: number): (opts: Partial<ToolDbOptions>) => Promise<ToolDb> {
  const nodes = closedAfterEachTest<ToolDb>(ms);
  return async (opts) => {
    const db = new ToolDb({ host: "127.0.0.1", port: 0, ...FAST, ...opts });
    nodes.push(db);
    await db.ready;
    return db;
  };
}
