import { sha256Hex } from "../crypto/sha256.js";

export const MAX_POW = 8;

/**
 * Finds the nonce whose hash has `difficulty` leading zero hex digits.
 * Yields to the event loop every `batch` tries so a high difficulty does not
 * freeze the node (tool-db 2.6.6 blocks for seconds at pow 5).
 */
export async function proofOfWork(prefix: string, difficulty: number | null, batch = 2000): Promise<{ nonce: number; hash: string }> {
  if (difficulty === null || difficulty <= 0) return { nonce: 0, hash: sha256Hex(`${prefix}0`) };
  const target = "0".repeat(Math.min(difficulty, MAX_POW));
  let nonce = 0;
  for (;;) {
    for (let i = 0; i < batch; i++, nonce++) {
      const hash = sha256Hex(prefix + nonce);
      if (hash.startsWith(target)) return { nonce, hash };
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
