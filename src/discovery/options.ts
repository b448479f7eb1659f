import { systemClock, type Clock } from "../base/clock.js";
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { envBootstrap } from "./env-bootstrap.js";
import type { TopicHash } from "./info-hash.js";

export interface DiscoveryOptions {
  /**
   * DHT bootstrap nodes as 'host:port'. `false` makes this node a seed (no
   * bootstrap). Undefined = the TOOLDB_DHT_BOOTSTRAP environment variable
   * when set, else bittorrent-dht's public mainline routers.
   */
  bootstrap?: string[] | false;
  /** UDP bind address. Default '0.0.0.0'. */
  host?: string;
  /** UDP port of the DHT node; 0 = random. Default 0. */
  port?: number;
  /** Expiry (ms) of the peer records this node stores for others. Default 15 min. */
  maxAge?: number;
  /** k-rpc query timeout in ms. Default 1000 (bittorrent-dht's own is 2000). */
  timeout?: number;
  /** Routing table file: loaded at start, written by saveState() and on destroy(). */
  statePath?: string;
  /** How often the routing table is saved to statePath (ms); 0 = only on destroy. Default 10 min. */
  stateSaveInterval?: number;
  /** Re-announce period (ms). Default 4 min; keep it well under the storing nodes' maxAge. */
  announceInterval?: number;
  /** Lookup period (ms) while a topic has fewer peers than wanted. Default 1000. */
  fastInterval?: number;
  /** First re-lookup delay (ms) after join/refresh while unsatisfied; doubles up to fastInterval. Default 10. */
  warmupInterval?: number;
  /** Lookup period (ms) once satisfied. Default 45 s. */
  slowInterval?: number;
  /** Bound (ms) on one lookup or announce; the next is scheduled anyway. Default 10 s. */
  lookupTimeout?: number;
  /** A reported peer not re-seen within this many ms is dropped (and reported again if it reappears). Default 5 min. */
  peerTtl?: number;
  /** Peers per topic after which lookups slow down. Default 1 (overridable per join). */
  want?: number;
  /** Relative jitter applied to every period: ±jitter. Default 0.1. */
  jitter?: number;
  /** Memory bound on remembered peers per topic. Default 4096. */
  maxPeersPerTopic?: number;
  /** Don't report our own announces (same port, local address). Default false, as discovery-channel. */
  skipSelf?: boolean;
  /** Topic → info hash. Default sha1 (discovery-channel's); false = 20-byte topics used as is. */
  hash?: TopicHash;
  clock?: Clock;
  random?: () => number;
  /**
   * discovery-channel style nested DHT options, accepted so that code written
   * for it keeps its private bootstrap list (the flat options win). `interval`
   * is ignored: see fastInterval/slowInterval/announceInterval.
   */
  dht?: { bootstrap?: string[] | false; timeout?: number; maxAge?: number; interval?: number };
  /** discovery-channel's DNS/multicast discovery: not supported, ignored. */
  dns?: unknown;
}

type Resolvable = Omit<DiscoveryOptions, "dht" | "dns">;
export type ResolvedOptions = Required<Omit<Resolvable, "bootstrap" | "statePath" | "hash">> &
  Pick<Resolvable, "bootstrap" | "statePath" | "hash">;

export const DISCOVERY_DEFAULTS = {
  host: "0.0.0.0",
  port: 0,
  maxAge: 15 * 60_000,
  timeout: 1000,
  stateSaveInterval: 10 * 60_000,
  announceInterval: 4 * 60_000,
  fastInterval: 1000,
  warmupInterval: 10,
  slowInterval: 45_000,
  lookupTimeout: 10_000,
  peerTtl: 5 * 60_000,
  want: 1,
  jitter: 0.1,
  // Above a flood of 1,000 bogus announces, so the real servers still find a place.
  maxPeersPerTopic: 4096,
  skipSelf: false,
} as const;

function invalid(message: string): never {
  throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, message);
}

export function resolveOptions(opts: DiscoveryOptions = {}): ResolvedOptions {
  const { dht, dns: _dns, ...flat } = opts;
  // Silently dropping { dht: { bootstrap } } would fall back to the public routers.
  if (dht !== undefined && (typeof dht !== "object" || dht === null)) {
    invalid("dht must be an object (dht: false is not supported: this Discovery is DHT-only)");
  }
  const nested = dht ? { bootstrap: dht.bootstrap, timeout: dht.timeout, maxAge: dht.maxAge } : {};
  const o: ResolvedOptions = {
    ...DISCOVERY_DEFAULTS,
    clock: systemClock,
    random: Math.random,
    ...stripUndefined(nested),
    ...stripUndefined(flat),
  };
  if (o.bootstrap === undefined) o.bootstrap = envBootstrap();
  for (const k of ["maxAge", "timeout", "announceInterval", "fastInterval", "warmupInterval", "slowInterval", "lookupTimeout", "peerTtl"] as const) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) invalid(`${k} must be a positive number of ms`);
  }
  if (!Number.isFinite(o.stateSaveInterval) || o.stateSaveInterval < 0) invalid("stateSaveInterval must be >= 0");
  if (o.fastInterval > o.slowInterval) invalid("fastInterval must be <= slowInterval");
  // Otherwise every slow lookup would find the table expired and report all peers again.
  if (o.peerTtl < o.slowInterval) invalid("peerTtl must be >= slowInterval");
  if (!(o.jitter >= 0 && o.jitter < 1)) invalid("jitter must be in [0, 1)");
  if (!Number.isInteger(o.want) || o.want < 1) invalid("want must be an integer >= 1");
  if (!Number.isInteger(o.maxPeersPerTopic) || o.maxPeersPerTopic < 1) invalid("maxPeersPerTopic must be >= 1");
  if (typeof o.host !== "string" || o.host === "") invalid(`host must be a non-empty string (the DHT socket's bind address), got ${describeValue(o.host)}`);
  if (!isPort(o.port, true)) invalid("port must be an integer in 0..65535");
  if (o.bootstrap !== undefined && o.bootstrap !== false) {
    if (!Array.isArray(o.bootstrap)) invalid("bootstrap must be an array of 'host:port' or false");
    for (const b of o.bootstrap) if (!parseHostPort(b)) invalid(`bad bootstrap address '${String(b)}'`);
  }
  return o;
}

export function isPort(port: unknown, allowZero = false): port is number {
  return Number.isInteger(port) && (port as number) >= (allowZero ? 0 : 1) && (port as number) <= 65535;
}

/** 'host:port' → parts, or null. IPv4 or hostname only (the mainline DHT is IPv4). */
export function parseHostPort(s: unknown): { host: string; port: number } | null {
  if (typeof s !== "string") return null;
  const i = s.lastIndexOf(":");
  if (i <= 0) return null;
  const host = s.slice(0, i);
  const port = Number(s.slice(i + 1));
  return isPort(port) && !host.includes(":") ? { host, port } : null;
}

/** `ms` scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter]. */
export function jittered(ms: number, jitter: number, random: () => number): number {
  return Math.max(0, Math.round(ms * (1 + jitter * (2 * random() - 1))));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
