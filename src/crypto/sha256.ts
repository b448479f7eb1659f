import { createHash } from "node:crypto";

/**
 * Hex SHA-256 of a string's UTF-8 bytes, as ToolDb computes record hashes.
 * Synchronous because it sits on the hot path of every put; a browser build
 * maps this module to a pure-JS implementation.
 */
export function sha256Hex(input: string): string {
  return createHash("sha256").update(input, "utf8").digest("hex");
}
