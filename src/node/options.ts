import type { Server as HttpServer } from "node:http";
import type { Clock } from "../base/clock.js";
import type { Limits } from "../limits/limits.js";
import type { RangeSyncOptions } from "./sync/sync-budget.js";
import type { BroadcastOptions } from "./broadcast/broadcast-tree.js";
import type { NetworkAdapterConstructor } from "../network/network-adapter.js";
import type { ClientIntakeLimits } from "../network/client-intake.js";
import type { StorageAdapterConstructor } from "../stores/storage-adapter.js";
import type { UserAdapterConstructor } from "../users/user-adapter.js";

/** ToolDb's option names, plus ours. Every field has a default. */
export interface ToolDbOptions {
  /** Nodes only talk to nodes of the same topic. */
  topic: string;
  /** Accept incoming links and relay puts to other servers and subscribers. */
  server: boolean;
  /** Bind address of a server, and the host written into this node's peer record. */
  host: string;
  /**
   * The host written into this node's peer record when it differs from the
   * bind address (a server bound to 0.0.0.0 behind a public name or IP).
   * Other nodes and browsers learn servers from these records.
   */
  publicHost?: string;
  /**
   * The ws:// or wss:// URL browsers dial for this server (e.g. wss://db.example.com
   * behind a TLS proxy), signed into its peer record. Default: ws://host:port.
   */
  publicUrl?: string;
  /** Listening port of a server (0 = any free port; see `network.port`). */
  port: number;
  /** Servers to keep a link to from the start. */
  peers: Array<{ host: string; port: number }>;
  /** Transport class, or several to run at once (one handshake and session table across them). */
  networkAdapter: NetworkAdapterConstructor | readonly NetworkAdapterConstructor[];
  storageAdapter: StorageAdapterConstructor;
  userAdapter: UserAdapterConstructor;
  /** Store name; for LevelStore the database directory. Node keys live in `${storageName}.keys`. */
  storageName: string;
  /**
   * Clients where the platform adds a server selection (browsers): how many
   * servers to keep links to (`links`, default 2), chosen from `peers`, the
   * peer cache and verified gossiped server records, and how often linked
   * servers are asked for new ones (`refreshInterval`, ms). `false`: `peers` only.
   */
  serverSelection?: false | { links?: number; refreshInterval?: number; maxRetries?: number; cache?: boolean };
  /** Reconnect attempts per dialed address before giving up (default: forever). */
  maxRetries: number;
  /** First reconnect delay (ms); doubles with jitter up to maxReconnectDelay. */
  wait: number;
  maxReconnectDelay: number;
  /** Proof of work: leading zero hex digits required on record hashes (0 = off). */
  pow: number;
  /** Attach the WebSocket server to this HTTP server instead of listening on `port`. */
  httpServer?: HttpServer;
  /** Dial with wss://. */
  ssl: boolean;
  /**
   * Save the signed-in user's keys (unencrypted, in `<storageName>.keys`) so
   * that the next start is signed in as that user. Default: on in browsers
   * (a reload keeps the session), off in Node, where, as in tool-db 2.6.6, a
   * restart starts anonymous and a password account's key is never written
   * to disk. The anonymous user's keys are always kept.
   */
  rememberUser?: boolean;
  /** Log every component of this node to stderr. */
  debug: boolean;
  /**
   * tool-db 2.6.6 compatibility: accept records whose hash does not cover the
   * key, and write records that way. Off by default: such records can be
   * replayed under another key.
   */
  legacyRecords: boolean;
  handshakeTimeout: number;
  /** WebSocket ping interval; a link with no pong by the next ping is dropped. */
  heartbeatInterval: number;
  /** Largest accepted frame in bytes. */
  maxMessageBytes: number;
  /**
   * Largest record (its JSON, in bytes) stored or sent; larger ones are
   * refused. Default: what leaves every frame that carries a record within
   * maxMessageBytes (975,872 bytes at the default 1 MiB; limits/frame-fit.ts).
   */
  maxRecordBytes?: number;
  /** Servers catch up on each other's records when they link (query + gets). */
  serverSync: boolean;
  /** Keys fetched at most per catch-up with a tool-db 2.6.6 server (range reconciliation has no cap). */
  maxSyncKeys: number;
  /** Range reconciliation between tooldb-dht servers: budgets per peer and rounds per run (src/sync). */
  rangeSync?: RangeSyncOptions;
  /**
   * How servers relay to each other: on a broadcast tree (Plumtree) with
   * servers that support it (default), or by flooding every server link
   * (`mode: "flood"`, tool-db's relay). Timings in ms; see src/node/broadcast.
   */
  broadcast?: Partial<BroadcastOptions>;
  /** Message ids remembered for de-duplication. */
  dedupCapacity: number;
  maxSubscriptionsPerPeer: number;
  /** Requests (gets, queries, functions, forwards) waiting for replies at once. */
  maxPendingRequests: number;
  /**
   * How long a get waits for more replies after the first verified one (ms);
   * the newest record of all wins, so one stale or lying server cannot pin an
   * old version. Not waited when every peer asked has answered.
   */
  getGraceMs: number;
  /** Distinct keys with a write no server confirmed yet that a client keeps re-sending (see outbox.ts); the oldest is dropped beyond. */
  outboxCapacity: number;
  /** Re-send delay (ms) of a write on a link that stays silent (doubling per try), and a refused write's first wait (see outbox-delivery.ts). */
  outboxRetryInterval: number;
  /**
   * A client drops a linked server that leaves its acknowledged puts, or its
   * queries, unanswered this long (ms) while the link stays open (close code
   * 4012, a `refused` event UNRESPONSIVE), and tries other servers before it
   * again (see server-watch.ts). Default: 4 × outboxRetryInterval, at least
   * 15 s (20 s at the defaults); 0 turns it off.
   */
  unresponsiveTimeout?: number;
  /**
   * A client probes a linked server it asked nothing of (and heard nothing
   * from) for this long (ms): one `function` call that every server answers
   * at once (NOT_FOUND), judged as a query, so an idle client (a page that
   * only subscribes) drops a server that answers nothing too. At most one
   * probe per link per interval (one more for a probe left unanswered).
   * Default 30 s; 0 turns probes off (see server-probe.ts).
   */
  serverProbeInterval?: number;
  /**
   * A server dropped as unresponsive is forgiven one drop (its rank and its
   * growing wait back by one) after a link to it stayed open this long (ms)
   * and answered at least 3 asks, nothing left long unanswered (see
   * server-standing.ts). Default 10 min; 0: drops are never forgiven.
   */
  unresponsiveRecovery?: number;
  /**
   * The first wait (ms) before a server this client dropped as unresponsive
   * is dialed again (by the dialer and ServerSelection; DhtPeering has its
   * own `penaltyMs`); doubles per drop not forgiven, up to 10 min. Default
   * 5 s; more than 0.
   */
  unresponsivePenalty?: number;
  /**
   * A linked server's server list sent after the handshake (a pong) is
   * learned at most once per this many ms per link, one at a time; extra
   * lists are dropped. The fastest built-in refresh asks once a second
   * (the server mesh when it lacks candidates).
   */
  serverListInterval: number;
  clock?: Clock;
  random?: () => number;
  /** Resource limits of a server (connections, message rate, quotas, bans): see DEFAULT_LIMITS. */
  limits?: Partial<Limits>;
  /**
   * How a client takes in its links' frames: work in flight per link and in
   * all, frames (and their length) waiting per link and from all links
   * together, past which records are let go and asked again. Servers use
   * `limits` instead. See DEFAULT_CLIENT_INTAKE (network/client-intake.ts).
   */
  clientIntake?: Partial<ClientIntakeLimits>;
}

export const DEFAULT_OPTIONS = {
  topic: "tool-db-default",
  server: false,
  host: "127.0.0.1",
  port: 8080,
  peers: [] as Array<{ host: string; port: number }>,
  storageName: "tooldb",
  maxRetries: Infinity,
  wait: 1000,
  maxReconnectDelay: 30_000,
  pow: 0,
  ssl: false,
  debug: false,
  legacyRecords: false,
  handshakeTimeout: 5000,
  heartbeatInterval: 10_000,
  maxMessageBytes: 1024 * 1024,
  serverSync: true,
  maxSyncKeys: 10_000,
  dedupCapacity: 10_000,
  maxSubscriptionsPerPeer: 1000,
  maxPendingRequests: 4096,
  getGraceMs: 50,
  outboxCapacity: 10_000,
  outboxRetryInterval: 5000,
  serverListInterval: 1000,
};

/** Where a node keeps its own keys, beside its data (tool-db put them under the working directory). */
export function keyStoreName(storageName: string): string {
  return `${storageName}.keys`;
}

/** Where a server keeps its reconciliation index, beside its data. */
export function syncIndexName(storageName: string): string {
  return `${storageName}.sync`;
}
