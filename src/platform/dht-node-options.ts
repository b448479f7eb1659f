/**
 * A DHTServer's or DHTClient's own options, and their check, run by the
 * constructor before it makes its ToolDb (which checks its own options and
 * opens the store and, for a server, the WebSocket port): a wrong option is
 * a ToolDbError INVALID_ARGUMENT thrown at once, as ToolDb does for port,
 * peers and topic, never a rejection of `start()` from a node already
 * listening.
 */
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { checkPeerAddress, isPort } from "../limits/peer-address.js";
import { type DiscoveryOptions, resolveOptions } from "../discovery/options.js";
import { type ServerMeshOptions, resolveMeshOptions } from "../peering/server-mesh.js";
import type { ToolDbOptions } from "../node/options.js";
import type { HyperswarmNetworkOptions } from "../network/hyperswarm-network.js";
import type { MechanismSwitches } from "./node-discovery.js";

export interface DhtNodeOptions {
  /** DHT bootstrap nodes 'host:port'; default: the public mainline routers. */
  bootstrap?: string[] | false;
  /** UDP address/port of this node's DHT socket (default: `host`, random port). */
  dhtHost?: string;
  dhtPort?: number;
  /** Everything else the Discovery takes (intervals, statePath, clock...). */
  discovery?: Omit<DiscoveryOptions, "bootstrap" | "host" | "port">;
  /** ToolDb options (storage, user adapter, timings...). */
  db?: Partial<ToolDbOptions>;
  /** Directory for LevelDB data (and `<dir>.keys`); without it data is kept in memory. */
  dataDir?: string;
  /** Clients: links to servers kept (default 2). Servers: server links below which more are dialed (default 6; see `mesh`). */
  maxConnections?: number;
  /** Redials of a server after a verified link to it dropped (default 3). */
  dialRetries?: number;
  /** First penalty (ms) of an address that failed; doubles per failure up to 10 min (default 5 s). */
  penaltyMs?: number;
  /** Dials in flight at most, apart from the links kept (default 64). */
  maxDialsInFlight?: number;
  /** Happy eyeballs: ms after which another candidate is dialed while none has succeeded (default 100). */
  dialStaggerMs?: number;
  /** Bound (ms) on connect + handshake of an address never linked to before; no retry (default 2000). */
  firstContactTimeoutMs?: number;
  /** Servers: degree bounds of the server mesh and the address exchange (minLinks defaults to `maxConnections`). */
  mesh?: ServerMeshOptions;
  /**
   * Clients: ms per rotation of their server links (default 60000; 0 = off).
   * While all `maxConnections` links are up and another server could be
   * dialed, the link held a whole interval whose server delivered no record
   * this client asked for within `meritWindowMs` gives its slot; its address
   * rests 10 rotations (src/peering/client-rotation.ts).
   */
  rotateIntervalMs?: number;
  /** Clients: a server that delivered a record this client asked for within this many ms keeps its link (default 600000). */
  meritWindowMs?: number;
  /** Leave the DHT and close everything on SIGINT/SIGTERM. Default false. */
  handleSignals?: boolean;
  /** Called with the signal after a signal-triggered stop (e.g. to set an exit code). */
  onSignalStop?: (signal: NodeJS.Signals) => void;
  /**
   * Also run the Hyperswarm transport (joins sha256(topic) on HyperDHT) beside
   * WebSocket. `true` = default bootstrap (TOOLDB_HYPERDHT_BOOTSTRAP, else public).
   */
  hyperswarm?: HyperswarmNetworkOptions | true;
  /** Discovery mechanisms, merged; each switchable (see MechanismSwitches for defaults). */
  mechanisms?: MechanismSwitches;
}

function refuse(name: string, want: string, value: unknown): never {
  throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `option ${name} must be ${want}, got ${describeValue(value)}`);
}

/** Whole numbers (or Infinity, for retries) >= the minimum; durations finite and >= (or >) 0. */
const COUNTS: ReadonlyArray<[keyof DhtNodeOptions, number]> = [["maxConnections", 1], ["dialRetries", 0], ["maxDialsInFlight", 1]];
const DURATIONS: ReadonlyArray<[keyof DhtNodeOptions, "> 0" | ">= 0"]> = [
  ["penaltyMs", ">= 0"],
  ["dialStaggerMs", ">= 0"],
  ["firstContactTimeoutMs", "> 0"],
  ["rotateIntervalMs", ">= 0"],
  ["meritWindowMs", ">= 0"],
];
/** Durations a timer waits for: past this, Node fires the timer after 1 ms instead. */
const TIMER_MAX_MS = 2 ** 31 - 1;

function checkNumbers(options: DhtNodeOptions): void {
  for (const [name, min] of COUNTS) {
    const value = options[name];
    const ok = typeof value === "number" && (Number.isInteger(value) || (name === "dialRetries" && value === Infinity)) && value >= min;
    if (value !== undefined && !ok) refuse(name, `a whole number >= ${min}`, value);
  }
  for (const [name, bound] of DURATIONS) {
    const value = options[name];
    const ok = typeof value === "number" && Number.isFinite(value) && (bound === "> 0" ? value > 0 : value >= 0);
    if (value !== undefined && !ok) refuse(name, `a finite number of ms ${bound}`, value);
    if (name === "rotateIntervalMs" && ok && value > TIMER_MAX_MS) refuse(name, `at most ${TIMER_MAX_MS} ms`, value);
  }
}

/**
 * Throws INVALID_ARGUMENT unless `options` are usable: the mainline DHT's
 * (bootstrap, dhtPort, discovery; when `mechanisms.mainline` is on), the
 * peering numbers, a server's mesh bounds and the `mechanisms.peers` list.
 * The ToolDb options and the Hyperswarm ones (`HyperswarmNetwork.with`) are
 * checked where they are used, also before anything opens.
 */
export function checkDhtNodeOptions(options: DhtNodeOptions, server: boolean, defaultMaxConnections: number): void {
  if (typeof options !== "object" || options === null) refuse("options", "an object", options);
  if (options.dhtHost !== undefined && (typeof options.dhtHost !== "string" || options.dhtHost === "")) refuse("dhtHost", "a non-empty string", options.dhtHost);
  if (options.dhtPort !== undefined && !isPort(options.dhtPort, 0)) refuse("dhtPort", "a whole number from 0 to 65535", options.dhtPort);
  const mechanisms = options.mechanisms ?? {};
  if (mechanisms.mainline !== false) {
    // What start() hands the mainline Discovery; it throws INVALID_ARGUMENT ("bad bootstrap address '…'").
    resolveOptions({ ...options.discovery, bootstrap: options.bootstrap, port: options.dhtPort ?? 0 });
  }
  checkNumbers(options);
  if (server) resolveMeshOptions({ minLinks: options.maxConnections ?? defaultMaxConnections, ...options.mesh });
  if (mechanisms.peers !== undefined) {
    if (!Array.isArray(mechanisms.peers)) refuse("mechanisms.peers", "an array of { host, port }", mechanisms.peers);
    mechanisms.peers.forEach((peer, i) => checkPeerAddress(peer?.host, peer?.port, (part) => `option mechanisms.peers[${i}].${part}`));
  }
}
