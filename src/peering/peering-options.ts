/**
 * What DhtPeering takes: its candidate source, options, hooks and defaults.
 */
import type { PeerInfo } from "../node/tooldb.js";
import type { PeerAddress } from "../discovery/peer-table.js";
import type { ServerMeshOptions } from "./server-mesh.js";

/** Redials of a server after a verified link to it dropped, before it is backed off. */
export const DEFAULT_DHT_DIAL_RETRIES = 3;
/** First penalty for an address that failed or was refused; doubles per offence. */
export const DEFAULT_PENALTY_MS = 5_000;
export const MAX_PENALTY_MS = 10 * 60_000;
/** Dials in flight at most, apart from the links kept. */
export const DEFAULT_MAX_DIALS_IN_FLIGHT = 64;
/** Happy eyeballs: the next candidate is dialed when none of those in flight succeeded within this. */
export const DEFAULT_DIAL_STAGGER_MS = 100;
/** Connect + handshake of an address never verified: a real server answers in well under this. */
export const DEFAULT_FIRST_CONTACT_TIMEOUT_MS = 2_000;
/** The longest wait a timer takes: past it, Node fires the timer after 1 ms instead. */
export { MAX_TIMER_MS } from "../base/clock.js";

/** Where DhtPeering gets candidates: the mainline Discovery, or the merged discovery of every mechanism. */
export interface PeerSource {
  on(event: "peer", listener: (id: any, peer: PeerAddress, source: any) => void): unknown;
  off(event: "peer", listener: (id: any, peer: PeerAddress, source: any) => void): unknown;
  peers(topic: string): PeerAddress[];
  refresh(topic: string): boolean;
  forget(topic: string, host: string, port: number): boolean;
}

export interface PeeringOptions {
  /** A client's links to servers kept at most (servers: see `mesh`). */
  maxConnections: number;
  /** Redials of a server after a verified link to it dropped. */
  dialRetries: number;
  penaltyMs: number;
  /** Dials in flight at most, apart from the links kept. Default 64. */
  maxDialsInFlight?: number;
  /** Happy eyeballs: ms after which the next candidate is dialed while none succeeded. Default 100. */
  dialStaggerMs?: number;
  /** Bound (ms) on connect + handshake of an address this node never linked to. Default 2000. */
  firstContactTimeoutMs?: number;
  /** Servers: degree bounds of the server mesh and the address exchange. */
  mesh?: ServerMeshOptions;
  /**
   * Addresses found on a DHT are not dialed before this settles (at most 1 s):
   * the moment the peer cache has offered the servers verified before, so a
   * restarted node dials those first.
   */
  holdStrangersUntil?: Promise<unknown>;
  /** This node's own announced port and hosts (to skip itself by address). */
  selfPort?: number;
  selfHosts?: string[];
  random?: () => number;
  /** Clients: ms per rotation of their links on merit (client-rotation.ts; default 60000, 0 = off). */
  rotateIntervalMs?: number;
  /** Clients: a server that delivered a record the client asked for within this many ms keeps its link (default 600000). */
  meritWindowMs?: number;
}

export type PeeringHooks = {
  onPeerFound?: (peer: PeerAddress) => void;
  onPeerConnected?: (info: PeerInfo) => void;
  onPeerDisconnected?: (info: PeerInfo) => void;
};
