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
 *   MEMORY_LIMIT, no strike) and the newest record of each key let go that
 *   the client wants is asked for again (intake-shed.ts). An honest server
 *   can reach the bound: it relays every update of a subscribed key, and
 *   anyone may write one faster than a slow page checks them.
 */
export const CLIENT_INTAKE_LIMITS: Readonly<Required<IntakeLimits>> = {
  messageRate: Infinity,
  messageBurst: Infinity,
  maxOutstandingPerPeer: 32,
  maxOutstanding: 256,
  maxQueuedMessages: 8192,
  maxQueuedBytes: 32 * 1024 * 1024,
};
