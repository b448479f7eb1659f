/**
 * Group commit: callers share runs of `task`. A call is served by the next
 * run that starts after it (so whatever the caller did before calling is
 * covered), at most one run is in progress, and calls that arrive while one
 * runs share the single run queued behind it. Used for fsyncs and for
 * batched writes, where one run can serve many callers.
 */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;
  return () => {
    if (queued) return queued;
    const run = last
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return task();
      });
    queued = run;
    last = run;
    return run;
  };
}
