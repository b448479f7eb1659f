import { networkInterfaces } from "node:os";

const WILDCARDS = new Set(["0.0.0.0", "::", ""]);

/**
 * The IPv4 addresses a DHT socket bound to `bindHost` may be seen from by
 * storing nodes on the same network: the bound address itself, or every local
 * IPv4 address for a wildcard bind. (A NATed public address can't be known here.)
 */
export function localAddressesFor(bindHost: string): Set<string> {
  if (!WILDCARDS.has(bindHost)) return new Set([bindHost]);
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4") out.add(a.address);
  }
  return out;
}
