/**
 * A transport closed while its start (a listen) is still running: close()
 * waits for that start, but not forever. A start that ends within
 * CLOSE_START_MS is released at once as before (its socket closed before
 * close() resolves); past that, close() resolves and the transport is
 * released once the start ends, so a socket a late listen opens is closed
 * then and not left open.
 */
import type { TimerGroup } from "../base/clock.js";
import { errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";

/** How long a transport's close() waits for a start still running before it leaves the release to the start's end. */
export const CLOSE_START_MS = 5000;

/** Runs `release` once `start` (if any) settled: awaited when that is within `ms`, else in the background. */
export async function releaseAfterStart(start: Promise<void> | undefined, release: () => Promise<void>, timers: TimerGroup, log: LogFn, ms = CLOSE_START_MS): Promise<void> {
  const ended = start?.then(
    () => true,
    () => true,
  );
  let bound: ReturnType<TimerGroup["setTimeout"]> | undefined;
  const waited = ended ? await Promise.race([ended, new Promise<false>((resolve) => (bound = timers.setTimeout(() => resolve(false), ms)))]) : true;
  timers.clearTimeout(bound);
  if (waited) return release();
  log("close: the start has not ended after %d ms; the transport is released once it does", ms);
  void ended!.then(release).catch((err: unknown) => log("release after a late start failed: %s", errorText(err)));
}
