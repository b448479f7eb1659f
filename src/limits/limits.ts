import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";

/**
 * Resource limits of a server, in the spirit of libp2p's resource manager:
 * every limit has a safe default, and each refusal is reported as a
 * `refused` event with a stable code (see docs/operating-limits.md). Limits apply
 * to server nodes only: a client trusts the servers it chose to dial.
 */
export interface Limits {
  /** Incoming links that completed the handshake. Refused with CONNECTION_LIMIT. */
  maxConnections: number;
  /** Incoming links still in the handshake (unverified). Refused with CONNECTION_LIMIT. */
  maxUnverifiedConnections: number;
  /**
   * Incoming sockets held at once, counted from accept (before any upgrade or
   * handshake); 0 = the process's open-file limit less 10 % (at least 64)
   * where the platform tells it. At the limit the oldest socket that is not a
   * link yet is closed to make room, else the newcomer (CONNECTION_LIMIT).
   */
  maxOpenSockets: number;
  /** Incoming links from one remote IP, verified or not. Refused with CONNECTION_LIMIT. */
  maxConnectionsPerIp: number;
  /**
   * Share of maxConnections kept for links whose handshake says they are
   * servers: other newcomers take those slots only by evicting an idle link.
   */
  serverSlotShare: number;
  /** Messages per second per peer (token-bucket refill); Infinity = unlimited. */
  messageRate: number;
  /** Token-bucket size: the burst a peer may send at once. */
  messageBurst: number;
  /**
   * Frames held for a peer that is over its rate (its socket is paused
   * meanwhile); beyond it frames are dropped with RATE_LIMITED.
   */
  maxQueuedMessages: number;
  /**
   * Messages of one peer being handled at once (verifying, reading the store, in a server function),
   * weighed: a request weighs 1, a put its size over 32 KiB but at least 1/8 (network/fair-intake.ts).
   */
  maxOutstandingPerPeer: number;
  /** The same weight for all peers together; waiting peers are served round-robin. */
  maxOutstanding: number;
  /** Bytes of replies a peer has not read yet beyond which its requests wait (a peer must read what it asks for). */
  maxSendBacklog: number;
  /** The same for all links from one IP together (not for exempt IPs). */
  maxSendBacklogPerIp: number;
  /**
   * Bytes queued to go out on all links together, every transport: past half
   * of it the links holding the most wait to read; past it they are dropped
   * (MEMORY_LIMIT), largest queue first.
   */
  maxSendBuffered: number;
  /**
   * Bytes held for frames not complete yet on the links of one transport
   * together (stream links: TCP, Hyperswarm; WebSocket links: the fragments
   * of an unfinished message): past it the link holding the most is closed
   * (MEMORY_LIMIT, close code 4009).
   */
  maxReceiveBuffered: number;
  /** Keys in the store; new keys from peers are refused beyond it (QUOTA_EXCEEDED). */
  maxStoreKeys: number;
  /**
   * Share of maxStoreKeys open to anonymous keys (not in a `:<address>.` namespace
   * nor `==user` accounts): past it only owned keys are accepted.
   */
  anonymousKeyShare: number;
  /** Keys in one author's namespace `:<address>.`. */
  maxKeysPerAuthor: number;
  /** Proof of work (leading zero hex digits of the hash) a new `==user` record from a peer needs; 0 = none. Refused with SIGN_UP_LIMIT. */
  signUpPow: number;
  /** New `==user` records accepted per `signUpWindow` from the identity of one link (proven servers: `maxServerSignUpsPerIp`). */
  maxSignUpsPerIdentity: number;
  /** The same from one IP (not for exempt IPs). */
  maxSignUpsPerIp: number;
  /**
   * New `==user` records accepted per `signUpWindow` from a proven server
   * (relaying its clients' sign-ups), per identity and per IP (not for exempt
   * IPs); its address range (/24, /64) gets 4 × this. Anyone can be a server.
   */
  maxServerSignUpsPerIp: number;
  /** The window the sign-up quotas refill over (ms). */
  signUpWindow: number;
  /** Remote subscriptions held in total (per peer: the `maxSubscriptionsPerPeer` option). */
  maxSubscriptions: number;
  /** How long a ban lasts (ms); 0 disables bans. */
  banDuration: number;
  /** Banned identities from one IP (within banDuration) after which the IP itself is banned. */
  ipBanAfter: number;
  /** Ban entries remembered at most (oldest forgotten first). */
  maxBans: number;
  /**
   * Identities remembered as having proven themselves in a handshake: an
   * unproven handshake in such a name (a replayed record) is refused. Oldest
   * forgotten first.
   */
  provenIdentities: number;
  /**
   * Of those, the most from one address site (an IPv4 /24, an IPv6 /48;
   * exempt IPs are not grouped): a host minting identities and proving each
   * only forgets its own site's. Past `provenIdentities`, the largest site
   * forgets first, so a flood from many sites of two or more identities each
   * does not push out anyone else's either.
   */
  provenIdentitiesPerRange: number;
  /**
   * IPs exempt from maxConnectionsPerIp and from IP bans (identities are
   * still banned). Default: this host's loopback, because behind a reverse
   * proxy on the same host every link comes from it.
   */
  exemptIps: readonly string[];
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxConnections: 1024,
  maxUnverifiedConnections: 256,
  maxConnectionsPerIp: 32,
  maxOpenSockets: 0,
  serverSlotShare: 1 / 16,
  messageRate: 2000,
  messageBurst: 4000,
  maxQueuedMessages: 4096,
  maxOutstandingPerPeer: 32,
  maxOutstanding: 256,
  maxSendBacklog: 4 * 1024 * 1024,
  maxSendBacklogPerIp: 16 * 1024 * 1024,
  maxSendBuffered: 64 * 1024 * 1024,
  maxReceiveBuffered: 64 * 1024 * 1024,
  maxStoreKeys: 1_000_000,
  anonymousKeyShare: 0.9,
  maxKeysPerAuthor: 100_000,
  signUpPow: 0,
  maxSignUpsPerIdentity: 10,
  maxSignUpsPerIp: 30,
  maxServerSignUpsPerIp: 300,
  signUpWindow: 10 * 60_000,
  maxSubscriptions: 100_000,
  banDuration: 10 * 60_000,
  ipBanAfter: 3,
  maxBans: 10_000,
  provenIdentities: 4096,
  provenIdentitiesPerRange: 64,
  exemptIps: ["127.0.0.1", "::1", "::ffff:127.0.0.1"],
};

/**
 * Limits at which a server can serve nobody when set to 0 or a fraction (no
 * link admitted, no message handled, every reply or partial frame over its
 * budget): whole numbers >= 1, or Infinity.
 */
const AT_LEAST_ONE: ReadonlySet<string> = new Set<keyof Limits>([
  "maxConnections",
  "maxUnverifiedConnections",
  "maxConnectionsPerIp",
  "messageBurst",
  "maxOutstandingPerPeer",
  "maxOutstanding",
  "maxSendBacklog",
  "maxSendBacklogPerIp",
  "maxSendBuffered",
  "maxReceiveBuffered",
]);

/** Defaults overlaid with what the caller set; throws INVALID_ARGUMENT on nonsense. */
export function resolveLimits(given: Partial<Limits> | undefined): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const [name, value] of Object.entries(given ?? {})) {
    if (value === undefined) continue;
    if (!(name in DEFAULT_LIMITS)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `unknown limit ${name}`);
    if (name === "exemptIps") {
      if (!Array.isArray(value) || !value.every((ip) => typeof ip === "string")) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "limit exemptIps must be an array of IP strings");
      }
      limits.exemptIps = [...value];
      continue;
    }
    if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `limit ${name} must be a number >= 0`);
    }
    if (AT_LEAST_ONE.has(name) && !(value === Infinity || (Number.isInteger(value) && value >= 1))) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `limit ${name} must be a whole number >= 1 (or Infinity), got ${describeValue(value)}`);
    }
    if (name === "messageRate" && value === 0) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "limit messageRate must be above 0 (or Infinity), got number 0");
    }
    (limits as unknown as Record<string, number>)[name] = value;
  }
  for (const share of ["anonymousKeyShare", "serverSlotShare"] as const) {
    if (limits[share] > 1) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `limit ${share} must be in [0, 1]`);
  }
  return limits;
}
