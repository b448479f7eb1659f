/** Messages between the fault campaign harness and its worker processes (over the fork IPC channel). */
import type { PendingWrite } from "../src/node/outbox.js";
import type { SyncProgress } from "../src/node/server-sync.js";

export interface WorkerConfig {
  role: "server" | "client";
  name: string;
  topic: string;
  bootstrap: string[];
  dataDir: string;
  /** Servers: the port the server listens on, and the proxy port it announces. */
  port?: number;
  proxyPort?: number;
  heartbeatMs: number;
  skewMs: number;
  /** Clients: pause between writes, distinct own keys, how long an acknowledged put waits. */
  writeEveryMs: number;
  keys: number;
  ackTimeoutMs: number;
  /** How many times this worker was (re)started, written into values. */
  run: number;
}

export type HarnessCommand =
  | { type: "skew"; ms: number }
  | { type: "dump" }
  | { type: "quiesce"; ms: number }
  /** The worker's links, sync state, outbox and recent debug log (a slow checkpoint's diagnostics: faults/slow-trace.ts). */
  | { type: "diag" }
  | { type: "stop" };

/** A write left in a client's outbox, with its delivery state (client ids of servers). */
export type PendingReport = PendingWrite;

/** One link of a worker: the peer's client id, a server or not, dialed by us, proven rbsr1 server; pushes to it held off (ms left). */
export interface LinkDiag {
  id: string;
  server: boolean;
  out: boolean;
  rbsr: boolean;
  pushHeldMs: number;
}

/** A worker's state for a slow checkpoint's diagnostics (faults/worker-diag.ts). */
export interface WorkerDiag {
  /** Wall clock (ms, unskewed) when it was taken. */
  at: number;
  links: LinkDiag[];
  /** Servers: reconciliation progress since start. */
  sync?: SyncProgress;
  /** Clients: every outbox entry (provisional ones too). */
  outbox: PendingReport[];
  /** The last debug lines of its node, links, server mesh and peering (wall clock ms, text). */
  log: Array<[number, string]>;
}

export type WorkerReport =
  /** `id`: the node's client id (servers are named by it in the campaign log). */
  | { type: "ready"; id: string }
  /** A confirmed write; `by`: client ids of the servers that had confirmed it. */
  | { type: "acked"; key: string; h: string; t: number; by: string[] }
  /** An acknowledged put that timed out; `h`/`t` of what the client stores for the key right after. */
  | { type: "unacked"; key: string; h: string; t: number; by: string[] }
  /** Every stored record as [key, hash, timestamp]. */
  | { type: "dump"; records: Array<[string, string, number]> }
  | { type: "quiet"; outbox: number; pending: PendingReport[] }
  | { type: "diag"; state: WorkerDiag };
