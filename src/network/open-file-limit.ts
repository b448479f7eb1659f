import { readFileSync } from "node:fs";

/** Descriptors left for everything that is not an incoming link: stores, outgoing links, the DHT, logs. */
const HEADROOM_MIN = 64;
const HEADROOM_SHARE = 0.1;

/**
 * The process's soft limit of open files (`ulimit -n`, RLIMIT_NOFILE), where
 * the platform tells it without a child process (Linux: /proc/self/limits);
 * undefined elsewhere or when unlimited.
 */
export function openFileLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+)\s/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Incoming sockets a server may hold: `configured` when set (> 0), else the open-file limit less headroom (Infinity when unknown). */
export function incomingSocketCapacity(configured: number, limit = openFileLimit()): number {
  if (configured > 0) return configured;
  if (limit === undefined) return Infinity;
  return Math.max(1, limit - Math.max(HEADROOM_MIN, Math.ceil(limit * HEADROOM_SHARE)));
}
