import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/**
 * Hex SHA-256 of a string's UTF-8 bytes, as ToolDb computes record hashes.
 * Synchronous because it sits on the hot path of every put, so it cannot be
 * WebCrypto's digest (async); @noble/hashes (audited, no dependencies) runs
 * the same on Node and in browsers.
 */
export function sha256Hex(input: string): string {
  return bytesToHex(sha256(utf8ToBytes(input)));
}
