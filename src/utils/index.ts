/**
 * The helper functions tool-db 2.6.6 exports from its root, under the same
 * names and signatures, so code that imports them keeps working. They sit on
 * this project's crypto and encoding modules; `proofOfWork` is the one
 * records are signed with (also in `tooldb-dht/core`). See
 * docs/tool-db-api.md for the names that are not here and why.
 */
import { sha1Hex } from "../crypto/sha1.js";
import { sha256Hex } from "../crypto/sha256.js";
import { bytesToHex, toolDbBase64ToBytes, toolDbBytesToBase64, utf8ToBytes } from "../crypto/encoding.js";
import { randomId, randomName } from "../base/random.js";
import { peerRecordDigest } from "../records/peer-record.js";

/** Hex SHA-256 of the UTF-8 string. */
export function sha256(str: string): string {
  return sha256Hex(str);
}

/** Hex SHA-1 of the UTF-8 string. */
export function sha1(str: string): string {
  return sha1Hex(str);
}

export function uniq<T>(array: T[]): T[] {
  return Array.from(new Set(array));
}

/** Random alphanumeric text (CSPRNG; 2.6.6 used Math.random). A custom alphabet `chars` is honoured. */
export function textRandom(length = 24, chars?: string): string {
  if (!chars) return randomId(length);
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (let i = 0; i < length; i++) out += chars.charAt(bytes[i]! % chars.length);
  return out;
}

export function randomAnimal(): string {
  return randomName();
}

/** A random 256-bit key as hex. */
export function generateGroupKey(): string {
  return bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
}

/** For `.catch(catchReturn)`: swallows the error, resolves undefined. */
export function catchReturn(_err: unknown): undefined {
  return undefined;
}

export function stringToArrayBuffer(str: string): ArrayBuffer {
  return utf8ToBytes(str).buffer;
}

export function arrayBufferToString(buffer: ArrayBuffer | Uint8Array): string {
  return new TextDecoder().decode(buffer);
}

export function arrayBufferToHex(buffer: ArrayBuffer): string {
  return bytesToHex(new Uint8Array(buffer));
}

/** Lenient like 2.6.6: reads the hex pairs it finds, ignores the rest. */
export function hexToArrayBuffer(hex: string): ArrayBuffer {
  const pairs = hex.match(/[\dA-F]{2}/gi) ?? [];
  return Uint8Array.from(pairs, (p) => parseInt(p, 16)).buffer;
}

export function hexToUint8(hex: string): Uint8Array {
  return new Uint8Array(hexToArrayBuffer(hex));
}

/** One character per hex pair (char codes 0-255). */
export function hexToString(hex: string): string {
  let out = "";
  for (let i = 0; i < hex.length; i += 2) out += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return out;
}

/** Base64 of the string's UTF-8 bytes. */
export function toBase64(str: string): string {
  let latin1 = "";
  for (const b of utf8ToBytes(str)) latin1 += String.fromCharCode(b);
  return btoa(latin1);
}

export function fromBase64(b64: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
}

/** tool-db's byte encoding (bytes as a latin1 string, UTF-8 encoded, then base64). */
export function uint8ToBase64(bytes: Uint8Array): string {
  return toolDbBytesToBase64(bytes);
}

export function base64ToUint8(b64: string): Uint8Array {
  return toolDbBase64ToBytes(b64);
}

export { proofOfWork } from "../records/proof-of-work.js";

export { putEncrypted, getDecrypted, type ValueStore, type GroupKey } from "./encrypted-values.js";

/** tool-db 2.6.6's peer-record signature: `account` signs sha256("topic-timestamp-host:port") (see `signPeerRecord`). */
export function getPeerSignature(account: { signData(data: string): Promise<string> }, topic: string, timestamp: number, host: string, port: number): Promise<string> {
  return account.signData(peerRecordDigest(topic, timestamp, host, port));
}

/** tool-db's names for the record and peer-record types. */
export type { ToolDbRecord as VerificationData } from "../records/record.js";
export type { PeerRecord as Peer } from "../records/messages.js";
