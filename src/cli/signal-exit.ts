/**
 * How a long-running command (serve) ends on SIGINT or SIGTERM: it stops,
 * then its process ends, whatever is still pending.
 *
 * A LevelDB call on a stalled disk is a job on libuv's pool that cannot be
 * interrupted. The library gives up waiting for it (close() resolves, see
 * CLOSE_ENGINE_MS), but the job stays: it keeps Node from exiting by
 * itself, and process.exit() does not end the process either (Node joins
 * the pool's threads before it exits, and one of them is stuck). Only a
 * signal's default action ends it then, so that is what ends it here: the
 * stop's own signal, raised again once no listener is left (the process
 * ends as a shell reports a signal's end: 128 + its number, SIGINT 130,
 * SIGTERM 143). Only the CLI ends the process; the library never does.
 */
import { errorText } from "../base/errors.js";
import type { Out } from "./command.js";

/**
 * How long a signal's stop may take before the process ends without it. On
 * a stalled disk the node's close waits 5 s (CLOSE_ENGINE_MS) for the peer
 * cache's store, 5 s (CLOSE_WRITES_MS) for the puts in flight, as long for
 * the outbox's last writes, then 5 s for the record, key and sync-index
 * stores; past this the rest is not worth a supervisor's SIGKILL.
 * docs/operating-deployment.md gives a supervisor's grace period from it.
 */
export const STOP_BOUND_MS = 20_000;
/** Once the stop ended, the process exits by itself at once; still running after this, something holds it (a stalled disk). */
export const EXIT_GRACE_MS = 1000;

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
type StopSignal = (typeof SIGNALS)[number];

/**
 * On the first SIGINT or SIGTERM runs `stop(signal)` (it prints its own
 * lines); once it resolved the process exits by itself with code 0 (1 with
 * the reason on stderr when it failed). The process ends by the signal
 * itself, its reason on stderr, when a second signal comes during the
 * stop, when the stop has not ended after STOP_BOUND_MS, or when something
 * still holds the process EXIT_GRACE_MS after the stop ended.
 */
export function exitOnSignal(stop: (signal: StopSignal) => Promise<void>, out: Out, fail: Out): void {
  let stopping: StopSignal | undefined;
  const end = (signal: StopSignal, reason: string) => {
    fail(`tooldb-dht: ${reason}`);
    for (const s of SIGNALS) process.removeAllListeners(s);
    process.kill(process.pid, signal); // its default action, now that nothing listens: ends the process
  };
  const onSignal = (signal: StopSignal) => {
    if (stopping) return end(signal, `${signal} again while stopping after ${stopping}: ending at once, without waiting for the stop`);
    stopping = signal;
    out(`${signal}: stopping (leaving the DHT, closing sockets and store; a second signal ends the process at once)`);
    const bound = setTimeout(() => end(signal, `${signal}: the stop had not ended after ${STOP_BOUND_MS / 1000} s (a stalled disk or socket?): ending without it; writes not yet confirmed may be lost, the data directory opens again`), STOP_BOUND_MS);
    bound.unref();
    const held = () => {
      const grace = setTimeout(() => end(signal, `${signal}: stopped, but something still held the process ${EXIT_GRACE_MS / 1000} s later (a call on a stalled disk?): ending it`), EXIT_GRACE_MS);
      grace.unref(); // fires only if something else keeps the process running
    };
    void stop(signal).then(
      () => {
        clearTimeout(bound);
        process.exitCode = 0;
        held();
      },
      (err: unknown) => {
        clearTimeout(bound);
        fail(`tooldb-dht: ${signal}: stopping failed: ${errorText(err)}`);
        process.exitCode = 1;
        held();
      },
    );
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
}
