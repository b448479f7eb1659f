import type { Server as HttpServer } from "node:http";
import type { BackoffOptions } from "../base/backoff.js";
import type { Clock } from "../base/clock.js";
import type { ErrorCode } from "../base/errors.js";
import type { Limits } from "../limits/limits.js";
import type { PeerRecord, ToolDbMessage } from "../records/messages.js";
import type { PeerRecordProblem } from "../records/peer-record.js";
import type { PeerSession } from "./peer-session.js";
import type { ClientIntakeLimits } from "./client-intake.js";

/** Options a transport reads from its host (ToolDb's options carry them). */
export interface NetworkHostOptions {
  server: boolean;
  host: string;
  port: number;
  httpServer?: HttpServer;
  ssl?: boolean;
  /** Reconnect attempts per dial target before giving up (Infinity = forever). */
  maxRetries: number;
  /** First reconnect delay in ms; doubles (with jitter) up to maxReconnectDelay. */
  wait: number;
  maxReconnectDelay: number;
  handshakeTimeout: number;
  heartbeatInterval: number;
  maxMessageBytes: number;
  /** First wait (ms) before a server this client dropped as unresponsive is dialed again; doubles per drop (default 5 s). */
  unresponsivePenalty?: number;
  clock?: Clock;
  random?: () => number;
  /** Resource limits (servers); see src/limits/limits.ts for the defaults. */
  limits?: Partial<Limits>;
  /** How a client takes in its links' frames (not servers); see client-intake.ts for the defaults. */
  clientIntake?: Partial<ClientIntakeLimits>;
}

/** What the network needs from the database. ToolDb implements it. */
export interface NetworkHost {
  readonly options: NetworkHostOptions;
  readonly ready: Promise<void>;
  readonly topic: string;
  readonly isServer: boolean;
  nodeAddress(): string;
  localPeerRecord(): Promise<PeerRecord>;
  checkPeerRecord(record: PeerRecord, maxAgeMs?: number): Promise<PeerRecordProblem | null>;
  knownServers(): PeerRecord[];
  /** A server list a session sent: in the handshake's pong, or in a pong after it (then only from proven servers). */
  learnServers(records: PeerRecord[], from: PeerSession, source?: "handshake" | "pong"): void;
  /** A returned promise marks the message as outstanding until it settles (per-peer limits). */
  handleMessage(message: ToolDbMessage, from: PeerSession): void | Promise<unknown>;
  sessionOpened(session: PeerSession): void;
  /** The session's peer proved its identity in this session's handshake (called right after `sessionOpened`). */
  sessionProven?(session: PeerSession): void;
  sessionClosed(session: PeerSession, code: number, reason: string): void;
  /** The peer was heard again after a silence (ms) longer than the heartbeat allows for, and the link never closed: what was sent meanwhile may be lost. */
  sessionRevived?(session: PeerSession, silentMs: number): void;
  /**
   * A client let go of records from the session (its intake was full,
   * client-shedding.ts): `keys` are theirs, to ask again. Called at once,
   * then at most every 2 s a link while more are let go; each get sent is
   * noted with `PeerSession.noteAskedAgain`, so its answer is not let go.
   */
  sessionShed?(session: PeerSession, keys: readonly string[]): void;
  /** The gets this node waits for replies to (`keyOf(id)`: the key asked): a record answering one is never let go by a client's shedding. */
  readonly requests?: { keyOf(id: string): string | undefined };
  refused(event: RefusalEvent): void;
  /** Wire extensions this node speaks, listed in its ping and pong. */
  capabilities?(): string[];
  /**
   * Signs a handshake proof digest with the node key (the key of
   * `localPeerRecord`). A host without it runs tool-db 2.6.6 handshakes
   * only: it proves nothing and nobody is proven to it.
   */
  signHandshake?(digest: string): Promise<string>;
  /** Checks a handshake proof: `s` signs `h` with the key of address `a`; false (never a rejection) otherwise. */
  verifyHandshake?(proof: { h: string; a: string; s: string }): Promise<boolean>;
}

export interface RefusalEvent {
  code: ErrorCode;
  reason: string;
  peer?: string;
  host?: string;
  port?: number;
  key?: string;
  /**
   * How many refusals this event stands for (absent: 1). A flood of one
   * kind from one link is reported at most once a second, with its count
   * (server function calls over their rate); metrics, health reports and
   * the status history add it, so they count every refusal.
   */
  count?: number;
}

export interface NetworkOptions {
  handshakeTimeout: number;
  maxMessageBytes: number;
  maxRetries: number;
  backoff: BackoffOptions;
  unresponsivePenalty?: number;
  clock?: Clock;
}

export function networkOptionsFrom(o: NetworkHostOptions): NetworkOptions {
  return {
    handshakeTimeout: o.handshakeTimeout,
    maxMessageBytes: o.maxMessageBytes,
    maxRetries: o.maxRetries,
    backoff: { initial: o.wait, max: o.maxReconnectDelay, random: o.random },
    unresponsivePenalty: o.unresponsivePenalty,
    clock: o.clock,
  };
}
