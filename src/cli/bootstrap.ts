import { networkInterfaces } from "node:os";
import { BOOTSTRAP_ENV } from "../discovery/env-bootstrap.js";
import { HYPERDHT_BOOTSTRAP_ENV } from "../network/hyperswarm-bootstrap.js";
import type { Out } from "./command.js";
import type { BootstrapOptions } from "./options.js";

/** `tooldb-dht bootstrap` (flags and help in commands.ts) with its options, checked by bootstrapOptions before this module loads. */
export async function bootstrap({ host, port, hyperdht }: BootstrapOptions, out: Out): Promise<undefined> {
  // Each engine loads only when asked for: hyperdht (and hyperswarm with it) for --hyperdht, bittorrent-dht otherwise.
  const node = hyperdht
    ? await (await import("../discovery/hyperdht-bootstrap.js")).startHyperdhtBootstrap({ host, port })
    : await (await import("../discovery/bootstrap-node.js")).startBootstrapNode({ host, port });
  // Before the address is printed: whoever reads it may signal at once (stdout to a pipe is written synchronously).
  const stop = (signal: string) => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    void node.close().then(() => out(`${signal}: bootstrap node closed`));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const bound = node.address();
  const addresses = usableAddresses(host, bound.port);
  if (hyperdht) {
    out(`HyperDHT bootstrap on ${host}:${bound.port} — give serve --hyperswarm --hyperdht-bootstrap ${addresses[0]} (or ${HYPERDHT_BOOTSTRAP_ENV}=${addresses[0]})`);
  } else {
    out(`DHT bootstrap node on ${host}:${bound.port} — give servers and clients --bootstrap ${addresses[0]} (or ${BOOTSTRAP_ENV}=${addresses[0]})`);
  }
  if (addresses.length > 1) out(`  also reachable as ${addresses.slice(1).join(", ")}`);
  return undefined;
}

/**
 * host:port strings others can dial: the bound host itself, or for a
 * wildcard bind this machine's addresses (LAN first, loopback last).
 */
export function usableAddresses(host: string, port: number): string[] {
  const wildcard = host === "0.0.0.0" || host === "::";
  if (!wildcard) return [`${host.includes(":") ? `[${host}]` : host}:${port}`];
  const external: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) external.push(`${a.address}:${port}`);
  }
  return [...external, `127.0.0.1:${port}`];
}
