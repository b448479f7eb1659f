/// <reference path="../../types/hyperswarm.d.ts" preserve="true" />
import createTestnet from "hyperdht/testnet.js";

export interface HyperdhtBootstrapOptions {
  /** Bind address (default 0.0.0.0). */
  host?: string;
  /** UDP port of the first node, the one to list as bootstrap (0 = any; hyperdht takes another when it is busy). */
  port?: number;
  /** HyperDHT nodes to run (default 3: Hyperswarm's announces need a few persistent nodes to land on). */
  nodes?: number;
}

export interface HyperdhtBootstrap {
  /** The first node's address: what `--hyperdht-bootstrap` takes. */
  address(): { host: string; port: number };
  close(): Promise<void>;
}

/**
 * A private HyperDHT (`tooldb-dht bootstrap --hyperdht`): hyperdht's own
 * testnet, a few persistent nodes bootstrapping from the first, which is
 * the address Hyperswarm peers list as `bootstrap`.
 */
export async function startHyperdhtBootstrap(opts: HyperdhtBootstrapOptions = {}): Promise<HyperdhtBootstrap> {
  const host = opts.host ?? "0.0.0.0";
  const testnet = await createTestnet(opts.nodes ?? 3, { host, port: opts.port ?? 0 });
  let closing: Promise<void> | undefined;
  return {
    address: () => ({ host, port: testnet.nodes[0]!.address().port }),
    close: () => (closing ??= testnet.destroy()),
  };
}
