/**
 * The ToolDb handshake's pure parts: the signed ping and pong a node sends,
 * the identity a pong proves, the checks a peer record must pass, and the
 * rule that picks which of two links to the same node survives. The link
 * state machine that runs them is `Handshake` (handshake.ts).
 */
import { ErrorCode } from "../base/errors.js";
import type { PeerRecord, PingMessage, PongMessage } from "../records/messages.js";
import { type PeerRecordProblem, clientIdOf } from "../records/peer-record.js";
import { randomId } from "../base/random.js";
import { CloseCode } from "./connection.js";
import type { GateRefusal } from "./connection-gate.js";
import type { NetworkHost } from "./network-host.js";

/** The ping that opens a handshake (and, later, asks a server for its server list). */
export async function pingMessage(host: NetworkHost): Promise<PingMessage> {
  await host.ready;
  const peer = await host.localPeerRecord();
  const me = clientIdOf(host.nodeAddress());
  return { type: "ping", id: randomId(), to: [me], clientId: me, isServer: host.isServer, peer, caps: host.capabilities?.() };
}

/** Sign first: a server's own fresh record then heads the `servers` list too (tool-db reads only that list). */
export async function pongMessage(host: NetworkHost, id: string): Promise<PongMessage> {
  const peer = await host.localPeerRecord();
  return { type: "pong", id, to: [], clientId: clientIdOf(host.nodeAddress()), isServer: host.isServer, servers: host.knownServers(), peer, caps: host.capabilities?.() };
}

/** The record a pong proves its sender with, and how old it may be; undefined when it carries none. */
export function pongIdentity(pong: PongMessage): { record: PeerRecord; maxAgeMs: number | undefined } | undefined {
  // tool-db 2.6.6 servers send no `peer`, but list themselves among `servers`.
  const record = pong.peer ?? pong.servers.find((r) => clientIdOf(r.address) === pong.clientId);
  if (!record) return undefined;
  // tool-db 2.6.6 signs its own record once at start-up and never again: its age says nothing.
  return { record, maxAgeMs: pong.peer ? undefined : Number.POSITIVE_INFINITY };
}

/** A 2.6.6 server lists itself only once its keys are loaded: the dialer retries later. */
export const NO_IDENTITY: GateRefusal = { closeCode: CloseCode.NO_IDENTITY, reason: "pong carries no verifiable identity", code: ErrorCode.BAD_PEER };

/** Why a peer may not link with the record it proved itself with (`problem`: the record check's verdict); null when it may. */
export function identityRefusal(host: NetworkHost, problem: PeerRecordProblem | null, record: PeerRecord, clientId: string): GateRefusal | null {
  if (problem === "topic") {
    return { closeCode: CloseCode.TOPIC_MISMATCH, reason: `topic mismatch: this node serves "${host.topic.slice(0, 64)}"`, code: ErrorCode.TOPIC_MISMATCH };
  }
  if (problem) return { closeCode: CloseCode.BAD_PEER, reason: `bad peer record (${problem})`, code: ErrorCode.BAD_PEER };
  if (clientIdOf(record.address) !== clientId) {
    return { closeCode: CloseCode.BAD_PEER, reason: "client id does not match the peer record", code: ErrorCode.BAD_PEER };
  }
  if (record.address === host.nodeAddress()) return { closeCode: CloseCode.SELF, reason: "connected to self", code: ErrorCode.BAD_PEER };
  return null;
}

/**
 * Two links reached the same node: true to keep the new one. Both ends
 * apply the same rule, so they drop the same link: keep the one dialed by
 * the node with the smaller address.
 */
export function keepNewLink(me: string, peer: string, newOutgoing: boolean, existingOutgoing: boolean): boolean {
  const dialerOf = (outgoing: boolean) => (outgoing ? me : peer);
  return dialerOf(newOutgoing) < dialerOf(existingOutgoing);
}
