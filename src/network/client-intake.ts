import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import type { IntakeLimits } from "./fair-intake.js";

/**
 * How a client (a page, a Node client, a WebRTC mesh peer) takes in its
 * links' frames: through the same fair intake as a server
 * (fair-intake.ts), with limits of its own. Before, a client handled every
 * frame as it arrived, and an outside check (D6) had a hostile server push
 * 30,000 valid updates of a key the client subscribed to (taken always, see
 * node/unsolicited-budget.ts): an honest server's update of that key
 * reached the page 8 s late, behind the flood's signature checks, and every
 * pending check was held in memory.
 *
 * - No message rate: a client meters no server it chose; it is fairness it
 *   needs, not a quota.
 * - A link's work in flight is capped as on a server (32 slots: 256 small
 *   puts), so a flooding link has at most that many checks queued ahead of
 *   another link's frame; a link at its cap has its socket paused (Node),
 *   and its sender holds the rest. Waiting links are served in turn.
 * - A browser's WebSocket and a WebRTC data channel cannot be paused: what
 *   they deliver waits in the link's queue, bounded by frames and by length.
 *   Past its bound the records waiting from the link are let go (`refused`
 *   MEMORY_LIMIT, no strike), and those it sends until they stop for a
 *   second, and the newest record of each key let go that the client wants
 *   is asked for again: at once, then at most every 2 s while more are let
 *   go (intake-shed.ts). An honest server can reach the bound: it relays
 *   every update of a subscribed key, and anyone may write one faster than
 *   a slow page checks them.
 * - The links' queues together have a bound too: a page's 2 servers and 8
 *   WebRTC peers could hold 10 x 32 MiB. Past it the link holding the most
 *   waiting lets go of the records it holds waiting then (client-shedding.ts),
 *   whichever link's frame came, and they are asked for again the same way:
 *   a flooding link cannot make an honest one shed while it holds more than
 *   that one, and Sybil links that each hold less (which can make an honest
 *   link the largest) cost it what it held waiting, not what it sends next.
 * - A record answering a get the client waits for (its app's read, or its
 *   asking again) is never let go.
 *
 * Every number can be set with the node's `clientIntake` option (a server
 * takes its links' frames with its `limits`, and ignores it).
 */
export interface ClientIntakeLimits {
  /** A link's messages being handled at once, weighed as on a server (a put: its size over 32 KiB, at least 1/8). */
  maxOutstandingPerPeer: number;
  /** The same for all links together. */
  maxOutstanding: number;
  /** Frames waiting from one link; past it the link's records are let go. */
  maxQueuedMessages: number;
  /** Their length (characters, about bytes); past it the same. */
  maxQueuedBytes: number;
  /** Frames waiting from all links together; past it the link holding the most lets go first. */
  maxTotalQueuedMessages: number;
  /** Their length; past it the same. */
  maxTotalQueuedBytes: number;
}

/**
 * The defaults. The totals: two links' frames (an honest link can hold its
 * whole bound while another holds its own), and one and a half links'
 * length, 48 MiB, what a page holds waiting at most, where its 2 servers
 * and 8 WebRTC peers could hold 320 MiB before. A frame counts its
 * characters and V8 keeps a string with any character past U+00FF at two
 * bytes each, so that is about 96 MiB of memory at worst. Measured
 * (test/browser/client-intake-total.test.ts): 6 hostile servers' bursts
 * made a page hold 161 MiB waiting, its renderer +183 MiB; with the total,
 * 48 MiB and +39 MiB. Frames of small records (300-byte puts) reach the
 * frame bound first: 16,384 of them are about 5 MiB.
 */
export const DEFAULT_CLIENT_INTAKE: Readonly<ClientIntakeLimits> = {
  maxOutstandingPerPeer: 32,
  maxOutstanding: 256,
  maxQueuedMessages: 8192,
  maxQueuedBytes: 32 * 1024 * 1024,
  maxTotalQueuedMessages: 16_384,
  maxTotalQueuedBytes: 48 * 1024 * 1024,
};

/**
 * The client intake's limits: the defaults overlaid with `given` (the
 * `clientIntake` option); throws INVALID_ARGUMENT naming a field that is
 * unknown or not a whole number >= 1 (or Infinity: no bound).
 */
export function resolveClientIntake(given?: Partial<ClientIntakeLimits>): Readonly<Required<IntakeLimits>> {
  const limits: ClientIntakeLimits = { ...DEFAULT_CLIENT_INTAKE };
  for (const [name, value] of Object.entries(given ?? {})) {
    if (value === undefined) continue;
    if (!(name in DEFAULT_CLIENT_INTAKE)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `unknown option clientIntake.${name}`);
    if (!(value === Infinity || (typeof value === "number" && Number.isInteger(value) && value >= 1))) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `option clientIntake.${name} must be a whole number >= 1 (or Infinity), got ${describeValue(value)}`);
    }
    limits[name as keyof ClientIntakeLimits] = value;
  }
  return { messageRate: Infinity, messageBurst: Infinity, ...limits };
}

/** The client intake's limits at their defaults. */
export const CLIENT_INTAKE_LIMITS: Readonly<Required<IntakeLimits>> = resolveClientIntake();
