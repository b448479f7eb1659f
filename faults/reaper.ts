/**
 * Kills the fault campaign's worker processes once the campaign process is
 * gone, however it went (SIGKILL included). A worker exits by itself when
 * its IPC channel closes, but one the campaign paused with SIGSTOP cannot
 * notice anything: this process, forked detached by the Cluster, hears of
 * every worker's pid and SIGKILLs the ones still listed when its own IPC
 * channel closes (SIGKILL ends a stopped process too).
 */
const pids = new Set<number>();

process.on("message", (raw) => {
  const m = raw as { watch?: number; forget?: number };
  if (typeof m.watch === "number") pids.add(m.watch);
  if (typeof m.forget === "number") pids.delete(m.forget);
});

// Signals meant for the campaign's terminal (Ctrl-C) must not end the reaper first: the disconnect tells.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => undefined);

process.on("disconnect", () => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  process.exit(0);
});
