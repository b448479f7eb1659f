/**
 * A verification thread of crypto/verify-pool.ts (Node only: the pool starts
 * it with worker_threads). It checks packed batches of ECDSA P-256
 * signatures synchronously with node:crypto (OpenSSL) and posts back one
 * byte per entry.
 */
import { type KeyObject, createPublicKey, verify } from "node:crypto";
import { parentPort } from "node:worker_threads";
import { BoundedSet, LruMap } from "../base/bounded-set.js";
import { verifyPacked } from "./signature-batch.js";

/**
 * Imported keys per thread, cached only from an address's second use, as on
 * the main thread (crypto/ecdsa.ts). An imported P-256 key holds 4-5 KiB of
 * native memory that is freed only when its KeyObject is collected: cached,
 * the one-off key of every client's handshake lived long enough to reach
 * the old generation, which this thread collects rarely, and a server that
 * took 10,000 handshakes held about 9 KiB of RSS per client instead of 4.
 * Uncached, it dies young.
 */
const MAX_KEYS = 1024;
const keys = new LruMap<string, KeyObject | null>(MAX_KEYS);
const seenOnce = new BoundedSet<string>(2 * MAX_KEYS);

function keyOf(address: string): KeyObject | null {
  const cached = keys.get(address);
  if (cached !== undefined) return cached;
  let key: KeyObject | null;
  try {
    key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: address.slice(0, 43), y: address.slice(43) }, format: "jwk" });
  } catch {
    key = null; // not a point on the curve
  }
  if (!seenOnce.add(address)) keys.set(address, key);
  return key;
}

function check(h: string, a: string, s: string): boolean {
  const key = keyOf(a);
  if (!key) return false;
  try {
    return verify("sha256", Buffer.from(h, "latin1"), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "hex"));
  } catch {
    return false;
  }
}

parentPort?.on("message", (job: { id: number; packed: string }) => {
  const results = verifyPacked(job.packed, check);
  parentPort!.postMessage({ id: job.id, results }, [results.buffer as ArrayBuffer]);
});
