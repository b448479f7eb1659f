import { networkInterfaces } from "node:os";
import { startBootstrapNode } from "../discovery/bootstrap-node.js";
import { BOOTSTRAP_ENV, envBootstrap } from "../discovery/env-bootstrap.js";
import { HYPERDHT_BOOTSTRAP_ENV } from "../network/hyperswarm-network.js";
import { startHyperdhtBootstrap } from "../discovery/hyperdht-bootstrap.js";
import { UsageError, booleanFlag, hostPortList, listFlag, portFlag, stringFlag, type ParsedArgs } from "./args.js";
import type { Out } from "./command.js";
import { DEFAULT_HYPERDHT_BOOTSTRAP_PORT } from "./defaults.js";

/** `tooldb-dht bootstrap` (flags and help in commands.ts). */
export async function bootstrap(args: ParsedArgs, out: Out): Promise<undefined> {
  const host = stringFlag(args, "host", "HOST", "0.0.0.0")!;
  const hyperdht = booleanFlag(args, "hyperdht");
  const port = portFlag(args, "port", "PORT", hyperdht ? DEFAULT_HYPERDHT_BOOTSTRAP_PORT : 6881);
  const node = hyperdht ? await startHyperdhtBootstrap({ host, port }) : await startBootstrapNode({ host, port });
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

/** --bootstrap (checked: host:port each), else the environment variable (said when in force), else undefined (public routers). */
export function bootstrapList(args: ParsedArgs, out: Out): string[] | undefined {
  const flag = listFlag(args, "bootstrap");
  if (flag) return hostPortList(flag, "--bootstrap");
  if (args.flags.get("bootstrap") !== undefined) hostPortList([String(args.flags.get("bootstrap"))], "--bootstrap");
  const env = fromEnv(envBootstrap);
  if (env) out(`DHT bootstrap from ${BOOTSTRAP_ENV}: ${env.join(",")}`);
  return env;
}

/** A variable's value read by `read`; a bad value is a usage error (exit 2), as a bad flag is. */
function fromEnv<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}
