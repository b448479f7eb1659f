/// <reference path="../../types/hyperswarm.d.ts" preserve="true" />
/** The Hyperswarm topic key and HyperDHT bootstrap of this package (used by hyperswarm-network.ts). */
import { createHash } from "node:crypto";
import type { HyperDhtNodeAddress } from "hyperdht";
import { checkPeerAddress, portValue } from "../limits/peer-address.js";

/** Points every Hyperswarm/HyperDHT of this package at a private HyperDHT: `host:port[,host:port…]`. */
export const HYPERDHT_BOOTSTRAP_ENV = "TOOLDB_HYPERDHT_BOOTSTRAP";

/** The Hyperswarm topic of a ToolDb topic: sha256(topic), as in the ToolDb guide. */
export function topicKey(topic: string): Buffer {
  return createHash("sha256").update(topic).digest();
}

/** Bootstrap from TOOLDB_HYPERDHT_BOOTSTRAP, or undefined (hyperdht's public nodes). */
export function hyperdhtBootstrapFromEnv(env: NodeJS.ProcessEnv = process.env): HyperDhtNodeAddress[] | undefined {
  const value = env[HYPERDHT_BOOTSTRAP_ENV]?.trim();
  if (!value) return undefined;
  return value.split(",").map(toAddress);
}

/**
 * The HyperDHT bind address when none is given: 127.0.0.1 for a private
 * HyperDHT whose bootstrap is all on loopback, else all interfaces. A node
 * bound to all interfaces offers the host's LAN addresses to its peers,
 * which then dial those rather than loopback.
 */
export function defaultDhtHost(bootstrap: HyperDhtNodeAddress[] | undefined): string | undefined {
  const loopback = (host: string) => host.startsWith("127.") || host === "localhost" || host === "::1";
  return bootstrap?.length && bootstrap.every((b) => loopback(b.host)) ? "127.0.0.1" : undefined;
}

/**
 * A bootstrap entry ("host:port" or { host, port }; hyperdht's
 * "suggestedIP@host" host form too) as an address, or INVALID_ARGUMENT
 * naming it: a wrong entry was a NaN port hyperdht never reached.
 */
export function toAddress(entry: string | HyperDhtNodeAddress): HyperDhtNodeAddress {
  let host: unknown;
  let port: unknown;
  if (typeof entry === "string") {
    const at = entry.trim().lastIndexOf(":");
    [host, port] = at > 0 ? [entry.trim().slice(0, at), entry.trim().slice(at + 1)] : [entry, undefined];
  } else if (typeof entry === "object" && entry !== null) {
    ({ host, port } = entry);
  }
  const name = (part: string) => `HyperDHT bootstrap ${typeof entry === "string" ? `'${entry.slice(0, 80)}'` : "entry"}: ${part}`;
  const hosts = typeof host === "string" && host.split("@").length === 2 ? host.split("@") : [host];
  for (const h of hosts) checkPeerAddress(h, port, name);
  return { host: host as string, port: portValue(port) as number };
}
