import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { nodeBuiltin } from "./node-builtin.js";

type NodeHash = (algorithm: "sha256", data: string | Uint8Array, encoding: "hex") => string;

/** Node's one-shot OpenSSL hash when running on Node; undefined in browsers. */
const nodeHash: NodeHash | undefined = (() => {
  const hash = nodeBuiltin<{ hash?: NodeHash }>("node:crypto")?.hash;
  return typeof hash === "function" ? hash : undefined;
})();

/** SHA-256 with @noble/hashes (audited, no dependencies): the same on every platform. */
export function sha256HexPortable(input: string): string {
  return bytesToHex(sha256(utf8ToBytes(input)));
}

/**
 * Hex SHA-256 of a string's UTF-8 bytes, as ToolDb computes record hashes.
 * Synchronous because it sits on the hot path of every put (twice per record
 * merged: the record hash and its sync item id), so it cannot be WebCrypto's
 * digest (async). On Node, OpenSSL's one-shot hash is ~10× faster than the
 * portable @noble/hashes, which browsers use; both encode the string as
 * UTF-8 the same way (a lone surrogate becomes U+FFFD).
 */
export const sha256Hex: (input: string) => string = nodeHash ? (input) => nodeHash("sha256", input, "hex") : sha256HexPortable;

/** Hex SHA-256 of bytes, synchronously (OpenSSL on Node, @noble/hashes elsewhere): no thread-pool hop as WebCrypto's digest takes. */
export const sha256HexOfBytes: (input: Uint8Array) => string = nodeHash ? (input) => nodeHash("sha256", input, "hex") : (input) => bytesToHex(sha256(input));
