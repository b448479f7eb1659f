/**
 * The watch's probe of a linked server the client has asked nothing of for
 * a while (an idle page, a subscriber only). Such a client never judged its
 * servers: one that took the link and answered pings but no request held it
 * for good. (A server that answers probes but relays nothing is not caught:
 * the probe's name is recognisable.) A probe is one request every server answers at once: a
 * `function` call of a name no server defines (PROBE_FUNCTION), which
 * tooldb-dht and tool-db 2.6.6 servers answer alike with `functionReturn`
 * NOT_FOUND, from a map lookup, without forwarding it or reading their
 * store. It counts as a request (server-watch.ts), so a server that leaves
 * probes unanswered is dropped as one that leaves queries unanswered.
 *
 * The pace: a link whose server answered nothing asked for
 * `probeIntervalMs` (default 30 s), and has nothing else waiting, gets one
 * probe; so an answering server gets one probe per interval at most, and
 * none while the client's own asks keep it judged. A request that stays
 * unanswered alone (the watch needs two asks) gets one more probe half the
 * watch's bound after it, so the second ask has time to be answered too.
 */
import { randomId } from "../base/random.js";
import type { FunctionMessage } from "../records/messages.js";

/** The server function a probe calls: no server defines it (an app must not either). */
export const PROBE_FUNCTION = "tooldb-dht:probe";
/** The default `serverProbeInterval` (ms). */
export const DEFAULT_PROBE_INTERVAL_MS = 30_000;
/** Unanswered asks the watch needs before it drops a server (besides the time). */
export const MIN_ASKS = 2;

/** What the watch knows of one link, as the probe reads it. */
export interface ProbedLink {
  /** The oldest unanswered ask of each kind, and how many followed. */
  readonly waits: Readonly<Partial<Record<"put" | "request", { since: number; asks: number }>>>;
  /** When the server last answered an ask (or the link opened). */
  readonly lastHeard: number;
  /** When it was last probed. */
  readonly lastProbe: number;
}

/** Whether `link` is due a probe at `now`. */
export function probeDue(link: ProbedLink, now: number, probeIntervalMs: number, timeoutMs: number): boolean {
  if (probeIntervalMs <= 0 || timeoutMs <= 0) return false;
  const { put, request } = link.waits;
  // Acknowledged puts waiting: the outbox re-sends them on a silent link, and they are judged.
  if (put) return false;
  if (request) return request.asks < MIN_ASKS && now - request.since >= timeoutMs / 2 && now - link.lastProbe >= timeoutMs / 2;
  return now - Math.max(link.lastHeard, link.lastProbe) >= probeIntervalMs;
}

/** A probe's frame. */
export function probeMessage(): Omit<FunctionMessage, "to"> {
  return { type: "function", id: randomId(), function: PROBE_FUNCTION, args: null };
}
