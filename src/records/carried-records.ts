import { CRDT_LIMITS } from "../crdt/limits.js";

/**
 * The signed records a put's `data` carries: itself, and the heads of a CRDT
 * document (each is verified and merged on its own, at most maxHeads in all;
 * see node/crdt-docs.ts `splitHeads`). The intake charges a put by this.
 */
export function signedRecordsIn(data: unknown): number {
  const heads = typeof data === "object" && data !== null ? (data as { heads?: unknown }).heads : undefined;
  return Array.isArray(heads) ? 1 + Math.min(heads.length, CRDT_LIMITS.maxHeads - 1) : 1;
}
