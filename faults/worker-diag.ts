/**
 * A campaign worker's diagnostics for a slow checkpoint (faults/slow-trace.ts):
 * its links, its reconciliation state, its outbox, and the last lines of its
 * debug log. The log is kept in a ring, formatted only when asked for, so
 * that a campaign that never asks runs as before.
 */
import { format } from "node:util";
import { enableLogging, setLogSink } from "../src/base/logger.js";
import type { DhtNode } from "../src/platform/dht-node.js";
import { RBSR_CAPABILITY } from "../src/node/sync/range-sync.js";
import type { WorkerDiag } from "./protocol.js";

/** Debug lines kept (the last ones). */
const LOG_LINES = 400;
/** What is logged into the ring: the node (sync runs, refusals, outbox), its links (opened, closed, dialed), server mesh and peering. */
const LOGGED = "tooldb:node:*,tooldb:network*,tooldb:discovery:mesh,tooldb:discovery:peering";

const ring: Array<[number, string, unknown[]]> = [];

/** Routes this process's debug log into the ring (call before the node starts). */
export function keepDebugLog(): void {
  setLogSink((namespace, args) => {
    ring.push([Date.now(), namespace.replace(/^tooldb:/, ""), args]);
    if (ring.length > LOG_LINES) ring.splice(0, ring.length - LOG_LINES);
  });
  enableLogging(LOGGED);
}

export function diagnose(node: DhtNode): WorkerDiag {
  const db = node.db;
  const gate = db.sync.range?.gate;
  const now = Date.now();
  const clock = db.now();
  const links = db.network.peers.map((s) => ({
    id: s.clientId,
    server: s.isServer,
    out: s.outgoing,
    rbsr: s.provenServer && s.caps.has(RBSR_CAPABILITY),
    pushHeldMs: Math.max(0, (gate?.heldUntil(s) ?? 0) - clock),
  }));
  const server = db.options.server;
  return {
    at: now,
    links,
    ...(server ? { sync: { ...db.syncProgress, runs: { ...db.syncProgress.runs } } } : {}),
    outbox: server ? [] : db.outbox.pending(),
    log: ring.map(([at, namespace, args]) => [at, `${namespace} ${format(...args)}`]),
  };
}
