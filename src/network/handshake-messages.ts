/**
 * The ToolDb handshake's pure parts: the signed ping and pong a node sends,
 * the identity a pong proves, the checks a peer record must pass, and the
 * rule that picks which of two links to the same node survives, and the
 * challenge proofs (each side signs the other's fresh nonce with the key of
 * its own peer record; tool-db 2.6.6 nodes send no nonce and prove nothing). The link
 * state machine that runs them is `Handshake` (handshake.ts).
 */
import { ErrorCode } from "../base/errors.js";
import type { PeerRecord, PingMessage, PongMessage, ProofAckMessage, ProofMessage } from "../records/messages.js";
import { type HandshakeRole, type PeerRecordProblem, clientIdOf, handshakeNonce, handshakeProofDigest } from "../records/peer-record.js";
import { randomId } from "../base/random.js";
import { CloseCode } from "./connection.js";
import type { GateRefusal } from "./connection-gate.js";
import type { NetworkHost } from "./network-host.js";

/** True when the host can sign and check handshake proofs (ToolDb can); otherwise it runs 2.6.6 handshakes. */
export function provesIdentity(host: NetworkHost): boolean {
  return host.signHandshake !== undefined && host.verifyHandshake !== undefined;
}

/** A fresh challenge, or none when the host takes no part in proofs. */
export function challengeFor(host: NetworkHost): string | undefined {
  return provesIdentity(host) ? handshakeNonce() : undefined;
}

/** The ping that opens a handshake (with a nonce to sign), and later asks a server for its server list (without). */
export async function pingMessage(host: NetworkHost, nonce?: string): Promise<PingMessage> {
  await host.ready;
  const peer = await host.localPeerRecord();
  const me = clientIdOf(host.nodeAddress());
  return { type: "ping", id: randomId(), to: [me], clientId: me, isServer: host.isServer, peer, caps: host.capabilities?.(), ...(nonce ? { nonce } : {}) };
}

/**
 * Sign first: a server's own fresh record then heads the `servers` list too
 * (tool-db reads only that list). `answer`: the ping's nonce, signed with
 * the record the pong carries, and this node's own challenge for the dialer.
 */
export async function pongMessage(host: NetworkHost, id: string, answer?: { theirs: string; ours: string }): Promise<PongMessage> {
  const peer = await host.localPeerRecord();
  const pong: PongMessage = { type: "pong", id, to: [], clientId: clientIdOf(host.nodeAddress()), isServer: host.isServer, servers: host.knownServers(), peer, caps: host.capabilities?.() };
  if (answer) {
    pong.proof = await host.signHandshake!(handshakeProofDigest("pong", answer.theirs, peer));
    pong.nonce = answer.ours;
  }
  return pong;
}

/** The dialer's answer to the pong's challenge, signed with the record its ping carried. */
export async function proofMessage(host: NetworkHost, nonce: string, own: PeerRecord): Promise<ProofMessage> {
  return { type: "proof", id: randomId(), to: [], sig: await host.signHandshake!(handshakeProofDigest("proof", nonce, own)) };
}

/** The answering node checked the dialer's proof and opened its session: the dialer opens its own. */
export function proofAckMessage(): ProofAckMessage {
  return { type: "proofAck", id: randomId(), to: [] };
}

/** True when `sig` is `record`'s key signing `nonce` and `record` in `role`. */
export async function proofHolds(host: NetworkHost, role: HandshakeRole, nonce: string, record: PeerRecord, sig: string): Promise<boolean> {
  if (!host.verifyHandshake) return false;
  return host.verifyHandshake({ h: handshakeProofDigest(role, nonce, record), a: record.address, s: sig }).catch(() => false);
}

/** A handshake whose proof does not verify: a replayed pong or record, or a broken peer. */
export const BAD_PROOF: GateRefusal = { closeCode: CloseCode.BAD_PEER, reason: "handshake proof does not verify (a replayed handshake?)", code: ErrorCode.BAD_PEER };

/** A dialer that sent a nonce answers the pong's challenge before anything else, and the ack comes before anything else too. */
export const PROOF_FIRST: GateRefusal = { closeCode: CloseCode.BAD_PEER, reason: "the handshake proof and its ack must come first", code: ErrorCode.BAD_PEER };

/** An unproven handshake in the name of a node that proved itself to us before: someone replays its record. */
export const DOWNGRADE: GateRefusal = { closeCode: CloseCode.BAD_PEER, reason: "unproven handshake from a node that proved its identity before (a replayed handshake?)", code: ErrorCode.BAD_PEER };

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
 * Two links reached the same node: true to keep the new one. A proven link
 * always beats an unproven one (an impostor replaying the node's record
 * cannot push the real link out). Otherwise both ends apply the same rule,
 * so they drop the same link: keep the one dialed by the node with the
 * smaller address.
 */
export function keepNewLink(me: string, peer: string, newLink: { outgoing: boolean; proven: boolean }, existing: { outgoing: boolean; proven: boolean }): boolean {
  if (newLink.proven !== existing.proven) return newLink.proven;
  const dialerOf = (outgoing: boolean) => (outgoing ? me : peer);
  const [newOutgoing, existingOutgoing] = [newLink.outgoing, existing.outgoing];
  return dialerOf(newOutgoing) < dialerOf(existingOutgoing);
}
