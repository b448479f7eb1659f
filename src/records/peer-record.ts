import { sha256Hex } from "../crypto/sha256.js";
import type { PeerRecord } from "./messages.js";

/**
 * Signed peer records, as tool-db: `sig` signs sha256("topic-timestamp-host:port")
 * with the node key; a record that carries a `url` (how browsers reach the
 * server) signs sha256("topic-timestamp-host:port-url"). tool-db 2.6.6 never
 * checked them; we check signature, topic and freshness.
 */
export const PEER_RECORD_MAX_AGE_MS = 10 * 60_000;
/** Server lists gossiped in pongs may be older than a handshake record. */
export const GOSSIP_RECORD_MAX_AGE_MS = 24 * 60 * 60_000;
export const PEER_RECORD_MAX_SKEW_MS = 30_000;

export function peerRecordDigest(topic: string, timestamp: number, host: string, port: number, url?: string): string {
  return sha256Hex(url === undefined ? `${topic}-${timestamp}-${host}:${port}` : `${topic}-${timestamp}-${host}:${port}-${url}`);
}

export async function signPeerRecord(
  signer: { signData(data: string): Promise<string>; getAddress(): string | undefined },
  topic: string,
  host: string,
  port: number,
  timestamp: number,
  url?: string,
): Promise<PeerRecord> {
  const sig = await signer.signData(peerRecordDigest(topic, timestamp, host, port, url));
  return { topic, timestamp, host, port, ...(url === undefined ? {} : { url }), address: signer.getAddress() ?? "", sig };
}

export type PeerRecordProblem = "topic" | "stale" | "future" | "signature";

export async function checkPeerRecord(
  record: PeerRecord,
  expectedTopic: string,
  verify: (m: { h: string; a: string; s: string }) => Promise<boolean>,
  now: number,
  maxAgeMs = PEER_RECORD_MAX_AGE_MS,
): Promise<PeerRecordProblem | null> {
  if (record.topic !== expectedTopic) return "topic";
  if (record.timestamp > now + PEER_RECORD_MAX_SKEW_MS) return "future";
  if (record.timestamp < now - maxAgeMs) return "stale";
  const h = peerRecordDigest(record.topic, record.timestamp, record.host, record.port, record.url);
  const ok = await verify({ h, a: record.address, s: record.sig }).catch(() => false);
  return ok ? null : "signature";
}

/**
 * Who signs a handshake proof: the answering node in its pong, or the
 * dialing node in its `proof` message. The role is signed too, so one side's
 * proof can never be passed off as the other's.
 */
export type HandshakeRole = "pong" | "proof";

/**
 * What a handshake proof signs: the other side's fresh nonce together with
 * the signer's own peer record (its signed fields and its address). A proof
 * is good for one nonce only, so a pong or peer record replayed from another
 * session proves nothing.
 */
export function handshakeProofDigest(role: HandshakeRole, nonce: string, record: PeerRecord): string {
  const recordDigest = peerRecordDigest(record.topic, record.timestamp, record.host, record.port, record.url);
  return sha256Hex(`tooldb-handshake-1\n${role}\n${nonce}\n${record.address}\n${recordDigest}`);
}

/** A handshake nonce: 32 random bytes, hex. */
export function handshakeNonce(): string {
  const bytes = new Uint8Array(32);
  globalThis.crypto.getRandomValues(bytes);
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** tool-db identifies a socket by the last 20 characters of the node address. */
export function clientIdOf(address: string): string {
  return address.slice(-20);
}
