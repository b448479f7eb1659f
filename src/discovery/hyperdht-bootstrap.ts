/// <reference path="../../types/hyperswarm.d.ts" preserve="true" />
import HyperDHT from "hyperdht";
import createTestnet, { type Testnet } from "hyperdht/testnet.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";

export interface HyperdhtBootstrapOptions {
  /** Bind address (default 0.0.0.0). */
  host?: string;
  /** UDP port of the first node, the one to list as bootstrap (0 = any). A busy port fails the start. */
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
 * A private HyperDHT (`tooldb-dht bootstrap --hyperdht`): a persistent
 * node on the port asked for, and hyperdht's own testnet of a few more
 * bootstrapping from it; the first is the address Hyperswarm peers list as
 * `bootstrap`. hyperdht would take the next free port when the one asked
 * for is busy (and nobody could find the node at the address given out), so
 * the first node binds with `anyPort: false`: a busy port rejects with
 * NETWORK_FAILED, as the mainline bootstrap node does.
 */
export async function startHyperdhtBootstrap(opts: HyperdhtBootstrapOptions = {}): Promise<HyperdhtBootstrap> {
  const host = opts.host ?? "0.0.0.0";
  const port = opts.port ?? 0;
  const first = new HyperDHT({ ephemeral: false, firewalled: false, bootstrap: [], host, port, anyPort: port === 0 });
  try {
    await first.fullyBootstrapped();
  } catch (err) {
    await first.destroy().catch(() => undefined);
    const code = (err as { code?: unknown }).code;
    const text = errorText(err);
    throw new ToolDbError(ErrorCode.NETWORK_FAILED, `HyperDHT bootstrap failed to bind ${host}:${port}: ${text}${typeof code === "string" && !text.includes(code) ? ` (${code})` : ""}`, err);
  }
  const bound = first.address().port;
  let others: Testnet;
  try {
    others = await createTestnet(Math.max(0, (opts.nodes ?? 3) - 1), { host, bootstrap: [{ host, port: bound }] });
  } catch (err) {
    await first.destroy().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    address: () => ({ host, port: bound }),
    close: () => (closing ??= others.destroy().then(() => first.destroy())),
  };
}
