/**
 * A verification thread of crypto/verify-pool.ts (Node only: the pool starts
 * it with worker_threads). It checks packed batches of ECDSA P-256
 * signatures synchronously with node:crypto (OpenSSL) and posts back one
 * byte per entry.
 */
import * as crypto from "node:crypto";
import { parentPort } from "node:worker_threads";
import { p256SyncCheck } from "./p256-sync-check.js";
import { verifyPacked } from "./signature-batch.js";

const check = p256SyncCheck(crypto);

parentPort?.on("message", (job: { id: number; packed: string }) => {
  const results = verifyPacked(job.packed, check);
  parentPort!.postMessage({ id: job.id, results }, [results.buffer as ArrayBuffer]);
});
