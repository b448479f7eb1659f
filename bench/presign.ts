import { type EcdsaUser, signRecord, type ToolDbRecord } from "../src/index.js";

/**
 * Signs `count` key-bound records before a benchmark's clock starts: record
 * n is `{ n, payload }` under `${keyPrefix}${n % keys}` at time t0 + n (keep
 * t0 in the past: records more than 30 s ahead are refused).
 */
export async function presign(user: EcdsaUser, count: number, t0: number, keyPrefix: string, keys: number): Promise<ToolDbRecord[]> {
  const out: ToolDbRecord[] = new Array(count);
  const batch = 512;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async (_, j) => {
        const n = i + j;
        out[n] = await signRecord(user, `${keyPrefix}${n % keys}`, { n, payload: "x".repeat(64) }, t0 + n, 0, false);
      }),
    );
  }
  return out;
}

/**
 * Limits for the throughput benchmarks: one trusted writer may send as fast
 * as it can (by default a peer is held to 2,000 messages/s). The flood
 * benchmark (bench/flood.ts) runs with the default limits.
 */
export const TRUSTED_WRITER = { messageRate: Infinity };
