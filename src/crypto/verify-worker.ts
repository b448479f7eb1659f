/**
 * A verification thread of crypto/verify-pool.ts (Node only: the pool starts
 * it with worker_threads). It checks packed batches of ECDSA P-256
 * signatures synchronously with node:crypto (OpenSSL) and posts back one
 * byte per entry. Imported public keys are cached per thread, bounded.
 */
import { type KeyObject, createPublicKey, verify } from "node:crypto";
import { parentPort } from "node:worker_threads";
import { verifyPacked } from "./signature-batch.js";

/** Keys per thread (an imported P-256 key holds about 4-5 KiB of native memory). */
const MAX_KEYS = 1024;
const keys = new Map<string, KeyObject | null>();

function keyOf(address: string): KeyObject | null {
  let key = keys.get(address);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: address.slice(0, 43), y: address.slice(43) }, format: "jwk" });
    } catch {
      key = null; // not a point on the curve
    }
    if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value!);
    keys.set(address, key);
  }
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
