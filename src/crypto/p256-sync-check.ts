/**
 * A synchronous ECDSA P-256 signature check with node:crypto (OpenSSL), used
 * by the verification threads (crypto/verify-worker.ts) and by the main
 * thread when it helps them (crypto/verify-pool.ts). The node:crypto module
 * is passed in, so that no import of "node:…" reaches browser bundles.
 */
import type * as NodeCrypto from "node:crypto";
import { BoundedSet, LruMap } from "../base/bounded-set.js";

type KeyObject = NodeCrypto.KeyObject;

/** The part of node:crypto the check uses. */
export type SyncCrypto = Pick<typeof NodeCrypto, "createPublicKey" | "verify">;

/** (record hash, author address, signature hex) → valid; never throws. Formats are checked by the caller. */
export type SyncCheck = (h: string, a: string, s: string) => boolean;

/**
 * Imported keys are cached only from an address's second use, as on the
 * main thread (crypto/ecdsa.ts). An imported P-256 key holds 4-5 KiB of
 * native memory that is freed only when its KeyObject is collected: cached,
 * the one-off key of every client's handshake lived long enough to reach
 * the old generation, which a thread collects rarely, and a server that
 * took 10,000 handshakes held about 9 KiB of RSS per client instead of 4.
 * Uncached, it dies young.
 */
export function p256SyncCheck(crypto: SyncCrypto, maxKeys = 1024): SyncCheck {
  const keys = new LruMap<string, KeyObject | null>(maxKeys);
  const seenOnce = new BoundedSet<string>(2 * maxKeys);

  function keyOf(address: string): KeyObject | null {
    const cached = keys.get(address);
    if (cached !== undefined) return cached;
    let key: KeyObject | null;
    try {
      key = crypto.createPublicKey({ key: { kty: "EC", crv: "P-256", x: address.slice(0, 43), y: address.slice(43) }, format: "jwk" });
    } catch {
      key = null; // not a point on the curve
    }
    if (!seenOnce.add(address)) keys.set(address, key);
    return key;
  }

  return (h, a, s) => {
    const key = keyOf(a);
    if (!key) return false;
    try {
      return crypto.verify("sha256", Buffer.from(h, "latin1"), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "hex"));
    } catch {
      return false;
    }
  };
}
