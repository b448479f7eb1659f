import { type TimerGroup } from "../base/clock.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { createLogger, type LogFn } from "../base/logger.js";
import { CloseCode } from "../network/connection.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDb } from "../node/tooldb.js";
import { resolveLimits } from "../limits/limits.js";
import { isProvenServer, meshRange, pruneOrder } from "./mesh-ranking.js";

export { isProvenServer } from "./mesh-ranking.js";

export interface ServerMeshOptions {
  /** Server links below which the node dials more. Default 6. */
  minLinks?: number;
  /**
   * Server links above which the node closes those it has the least evidence
   * of being servers, the newest first (see mesh-ranking.ts). Default max(12, 2 × minLinks).
   */
  maxLinks?: number;
  /**
   * Incoming server links of one address range (/24, /64) a full mesh keeps
   * before those of other ranges: the rest of that range are closed first.
   * Default max(1, floor(maxLinks / 4)).
   */
  maxLinksPerRange?: number;
  /**
   * How often (ms) the node asks one linked server, chosen at random, for the
   * servers it knows: the address exchange that keeps the mesh connected as
   * servers come and go. Default 30 s; 0 turns the periodic exchange off.
   */
  exchangeIntervalMs?: number;
  /**
   * Mean ms between rotations of a server that has its `minLinks`: it links
   * to one more server picked at random among those it trusts, then closes
   * one of its other links (mesh-rotation.ts), so that a mesh split by a
   * partition joins again once it heals. Default 5 minutes; 0 turns it off.
   */
  rotateIntervalMs?: number;
  /**
   * Ms after which a server that has its `minLinks` dials again a server
   * whose link died without a close in the last 10 minutes (a server behind
   * a cut path: the first reached after it heals joins the mesh again),
   * doubling each time the same server is lost again. Default 5 s; 0 turns
   * it off.
   */
  redialLostMs?: number;
}

export const DEFAULT_MIN_SERVER_LINKS = 6;
export const DEFAULT_MAX_SERVER_LINKS = 12;
export const DEFAULT_EXCHANGE_INTERVAL_MS = 30_000;
export const DEFAULT_ROTATE_INTERVAL_MS = 300_000;
export const DEFAULT_REDIAL_LOST_MS = 5_000;
/** The longest delay a timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** An exchange asked for because the node lacks links waits at least this long after the previous one. */
const MIN_EXCHANGE_GAP_MS = 1_000;

export type ResolvedMeshOptions = Required<ServerMeshOptions>;

export function resolveMeshOptions(o: ServerMeshOptions = {}): ResolvedMeshOptions {
  const minLinks = o.minLinks ?? DEFAULT_MIN_SERVER_LINKS;
  const maxLinks = o.maxLinks ?? Math.max(DEFAULT_MAX_SERVER_LINKS, 2 * minLinks);
  const maxLinksPerRange = o.maxLinksPerRange ?? Math.max(1, Math.floor(maxLinks / 4));
  const exchangeIntervalMs = o.exchangeIntervalMs ?? DEFAULT_EXCHANGE_INTERVAL_MS;
  const rotateIntervalMs = o.rotateIntervalMs ?? DEFAULT_ROTATE_INTERVAL_MS;
  const redialLostMs = o.redialLostMs ?? DEFAULT_REDIAL_LOST_MS;
  if (!Number.isInteger(minLinks) || minLinks < 1) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "mesh.minLinks must be an integer >= 1");
  if (!Number.isInteger(maxLinks) || maxLinks < minLinks) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "mesh.maxLinks must be an integer >= mesh.minLinks");
  if (!Number.isInteger(maxLinksPerRange) || maxLinksPerRange < 1) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "mesh.maxLinksPerRange must be an integer >= 1");
  // A timer longer than 2^31 - 1 ms (or Infinity) fires after 1 ms in Node: a storm, not "never" (found in review).
  const interval = (v: number) => v >= 0 && v <= MAX_TIMER_MS;
  if (!interval(exchangeIntervalMs)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "mesh.exchangeIntervalMs must be 0..2147483647 ms (0 = off)");
  if (!interval(rotateIntervalMs)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "mesh.rotateIntervalMs must be 0..2147483647 ms (0 = off)");
  if (!interval(redialLostMs)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "mesh.redialLostMs must be 0..2147483647 ms (0 = off)");
  return { minLinks, maxLinks, maxLinksPerRange, exchangeIntervalMs, rotateIntervalMs, redialLostMs };
}

/**
 * A server's place in the mesh of servers: between `minLinks` and
 * `maxLinks` server links (DhtPeering dials while under the lower bound;
 * this closes links over the upper one, keeping those it has the most
 * evidence of being servers, see mesh-ranking.ts),
 * and a periodic exchange of server addresses with a random linked server,
 * proven ones first. Each exchange is one step of a random walk: the servers
 * a node learns are its neighbours' neighbours, and it picks new links among
 * them at random, so the graph stays a random one (an expander) as servers
 * leave and join, rather than splitting along the order servers started in.
 */
export class ServerMesh {
  readonly options: ResolvedMeshOptions;
  private readonly log: LogFn;
  private lastExchange = -Infinity;
  private stopTimer: (() => void) | undefined;
  private stopped = false;
  private readonly exemptIps: readonly string[];

  constructor(
    private readonly db: ToolDb,
    private readonly timers: TimerGroup,
    private readonly random: () => number,
    options: ServerMeshOptions = {},
  ) {
    this.options = resolveMeshOptions(options);
    this.log = createLogger("discovery:mesh");
    this.exemptIps = resolveLimits(db.options.limits).exemptIps;
  }

  start(): void {
    if (this.stopped || this.stopTimer || this.options.exchangeIntervalMs === 0) return;
    this.stopTimer = this.timers.every(this.options.exchangeIntervalMs, () => this.exchange());
  }

  stop(): void {
    this.stopped = true;
    this.stopTimer?.();
  }

  /** Linked servers, both directions. */
  serverLinks(): PeerSession[] {
    return [...this.db.network.serverPeers];
  }

  get degree(): number {
    return this.serverLinks().length;
  }

  /**
   * Closes the server links over `maxLinks`: the crowded ranges' incoming
   * links first, then those with the least evidence, the newest first
   * (mesh-ranking.ts). Returns how many.
   */
  prune(): number {
    if (this.stopped) return 0;
    const links = this.serverLinks();
    const excess = links.length - this.options.maxLinks;
    if (excess <= 0) return 0;
    // Half the mesh at most for links dialled from a Hyperswarm lookup (mesh-ranking.ts).
    const victims = pruneOrder(links, this.options.maxLinksPerRange, (s) => meshRange(s, this.exemptIps), Math.max(1, Math.floor(this.options.maxLinks / 2))).slice(0, excess);
    for (const s of victims) {
      this.log("pruning server link %s: %d server links, at most %d", s.clientId, links.length, this.options.maxLinks);
      s.connection.close(CloseCode.MESH_FULL, `server has its ${this.options.maxLinks} server links; try the servers it listed`);
    }
    return victims.length;
  }

  /** Asks one linked server, at random among the proven ones if any, for the servers it knows. */
  exchange(): boolean {
    if (this.stopped) return false;
    const links = this.serverLinks();
    const proven = links.filter(isProvenServer);
    const from = proven.length > 0 ? proven : links;
    if (from.length === 0) return false;
    const peer = from[Math.floor(this.random() * from.length)]!;
    this.lastExchange = this.db.now();
    this.db.network.requestServers(peer);
    return true;
  }

  /** An exchange now, unless one happened less than a second ago (the node lacks candidates to dial). */
  exchangeSoon(): void {
    if (this.db.now() - this.lastExchange >= MIN_EXCHANGE_GAP_MS) this.exchange();
  }
}
