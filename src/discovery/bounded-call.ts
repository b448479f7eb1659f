import type { TimerGroup } from "../base/clock.js";
import { errorText } from "../base/errors.js";

/** A bittorrent-dht style operation: calls back once, may return an abort function. */
export type DhtCall = (cb: (err: Error | null, nodes?: number) => void) => (() => void) | void;

/**
 * Runs `call` and reports its outcome exactly once: its callback, a thrown
 * error, or a timeout after `timeoutMs` (which aborts it). bittorrent-dht's
 * callbacks can take several k-rpc timeouts, so every announce and lookup
 * goes through this. Returns a cancel function that neither aborts nor reports.
 */
export function boundedCall(
  timers: TimerGroup,
  timeoutMs: number,
  label: string,
  call: DhtCall,
  done: (err: Error | null, nodes: number) => void,
): () => void {
  let settled = false;
  let abort: (() => void) | void;
  const finish = (err: Error | null, nodes = 0) => {
    if (settled) return;
    settled = true;
    timers.clearTimeout(guard);
    done(err, nodes);
  };
  const guard = timers.setTimeout(() => {
    abort?.();
    finish(new Error(`${label} timed out`));
  }, timeoutMs);
  try {
    abort = call((err, nodes) => finish(err, nodes ?? 0));
  } catch (err) {
    finish(new Error(`${label} failed: ${errorText(err)}`));
  }
  return () => {
    if (settled) return;
    settled = true;
    timers.clearTimeout(guard);
    abort?.();
  };
}
