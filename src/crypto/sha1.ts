import { sha1 } from "@noble/hashes/legacy.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/** Hex SHA-1 of a string's UTF-8 bytes (tool-db's `sha1`), the same on Node and in browsers. */
export function sha1Hex(input: string): string {
  return bytesToHex(sha1(utf8ToBytes(input)));
}
