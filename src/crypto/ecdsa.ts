import { BoundedSet, LruMap } from "../base/bounded-set.js";
import { isBase64Url, isHex, isLowerHex } from "../base/text-formats.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "./encoding.js";
import { nodeBuiltin } from "./node-builtin.js";
import { createVerifyPool } from "./verify-pool.js";

/**
 * ECDSA P-256 over WebCrypto. A ToolDb address is the public key's JWK x and
 * y (base64url, 43 chars each) concatenated; signatures are IEEE P1363 (r||s)
 * in hex, over the UTF-8 bytes of the signed string with SHA-256 (tool-db 2.6.6's
 * stringToArrayBuffer is a TextEncoder).
 */
const subtle = globalThis.crypto.subtle;
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN_PARAMS = { name: "ECDSA", hash: { name: "SHA-256" } } as const;

export const ADDRESS_LENGTH = 86;
export const SIGNATURE_HEX_LENGTH = 128;
/**
 * Imported public keys, so repeated authors cost one import. Bounded. An
 * imported P-256 key holds about 4-5 KiB of native (OpenSSL) memory, so a
 * key is cached only from its address's second use (`seenOnce` is the
 * doorkeeper): one-off signers, above all the node key of every client's
 * handshake, would otherwise fill the cache (2 × 4096 keys, ~40 MiB) with
 * keys that are never used again.
 */
const publicKeyCache = new LruMap<string, Promise<PublicKey | null>>(4096);
const seenOnce = new BoundedSet<string>(8192);

/**
 * On Node, verification goes to node:crypto: the same OpenSSL call that
 * WebCrypto makes, without WebCrypto's per-call argument normalisation,
 * which took about a third of the main thread's busy time in a catch-up of
 * signed records. Browsers use WebCrypto.
 */
interface NodeKeyObject {
  readonly asymmetricKeyType?: string;
}
interface NodeCrypto {
  createPublicKey(options: { key: JsonWebKey; format: "jwk" }): NodeKeyObject;
  verify(
    algorithm: string,
    data: Uint8Array,
    key: { key: NodeKeyObject; dsaEncoding: "ieee-p1363" },
    signature: Uint8Array,
    callback: (err: Error | null, valid: boolean) => void,
  ): void;
}
const nodeCrypto = nodeBuiltin<NodeCrypto>("node:crypto");

/** An imported public key: a node:crypto KeyObject on Node, a WebCrypto CryptoKey elsewhere. */
export type PublicKey = CryptoKey | NodeKeyObject;

export function isWellFormedAddress(address: unknown): address is string {
  return isBase64Url(address, ADDRESS_LENGTH);
}

function importJwk(jwk: JsonWebKey): Promise<PublicKey | null> {
  if (!nodeCrypto) return subtle.importKey("jwk", jwk, ALGORITHM, true, ["verify"]).catch(() => null);
  try {
    return Promise.resolve(nodeCrypto.createPublicKey({ key: jwk, format: "jwk" }));
  } catch {
    return Promise.resolve(null); // not a point on the curve
  }
}

export function importAddress(address: string): Promise<PublicKey | null> {
  let key = publicKeyCache.get(address);
  if (!key) {
    key = isWellFormedAddress(address) ? importJwk({ kty: "EC", crv: "P-256", x: address.slice(0, 43), y: address.slice(43), ext: true }) : Promise.resolve(null);
    if (!seenOnce.add(address)) publicKeyCache.set(address, key);
  }
  return key;
}

/**
 * Never throws: any malformed input is simply "not verified". On Node a
 * record hash (64 hex digits) is checked by the verification threads
 * (crypto/verify-pool.ts); other data, and browsers, go through one call each.
 */
export function verifyWithAddress(data: string, signatureHex: string, address: string): Promise<boolean> {
  if (!isHex(signatureHex, SIGNATURE_HEX_LENGTH)) return Promise.resolve(false);
  if (pool && isLowerHex(data, 64) && isWellFormedAddress(address)) return pool.verify(data, address, signatureHex);
  return verifyOne(data, signatureHex, address);
}

const pool = createVerifyPool((h, a, s) => verifyOne(h, s, a));

/** Threads verifying record hashes on Node (undefined in browsers); benches and tests read its counter. */
export function verifyPoolStats(): { threads: number; verified: number; helped: number; batches: number } | undefined {
  return pool ? { threads: pool.threadCount, verified: pool.verified, helped: pool.helped, batches: pool.batches } : undefined;
}

async function verifyOne(data: string, signatureHex: string, address: string): Promise<boolean> {
  const key = await importAddress(address);
  if (!key) return false;
  try {
    if (!nodeCrypto) return await subtle.verify(SIGN_PARAMS, key as CryptoKey, hexToBytes(signatureHex), utf8ToBytes(data));
    const signature = hexToBytes(signatureHex);
    return await new Promise<boolean>((resolve) => {
      // The callback form runs on libuv's pool, as WebCrypto's verify does.
      nodeCrypto.verify("sha256", utf8ToBytes(data), { key: key as NodeKeyObject, dsaEncoding: "ieee-p1363" }, signature, (err, valid) => resolve(!err && valid));
    });
  } catch {
    return false;
  }
}

export async function signWithKey(data: string, privateKey: CryptoKey): Promise<string> {
  const sig = await subtle.sign(SIGN_PARAMS, privateKey, utf8ToBytes(data));
  return bytesToHex(new Uint8Array(sig));
}

export async function generateSigningKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
}

export async function addressOf(publicKey: CryptoKey): Promise<string> {
  const jwk = await subtle.exportKey("jwk", publicKey);
  return `${jwk.x}${jwk.y}`;
}

/** Hex SPKI / PKCS8, the format @tool-db/ecdsa-user exports. */
export async function exportKeyPairHex(keys: CryptoKeyPair): Promise<{ pub: string; priv: string }> {
  const pub = new Uint8Array(await subtle.exportKey("spki", keys.publicKey));
  const priv = new Uint8Array(await subtle.exportKey("pkcs8", keys.privateKey));
  return { pub: bytesToHex(pub), priv: bytesToHex(priv) };
}

export async function importKeyPairHex(pub: string, priv: string): Promise<CryptoKeyPair> {
  const publicKey = await subtle.importKey("spki", hexToBytes(pub), ALGORITHM, true, ["verify"]);
  const privateKey = await subtle.importKey("pkcs8", hexToBytes(priv), ALGORITHM, true, ["sign"]);
  return { publicKey, privateKey };
}

/** Rebuild the key pair from a PKCS8 private key alone (the public point is in it). */
export async function keyPairFromPrivateHex(priv: string): Promise<CryptoKeyPair> {
  const privateKey = await subtle.importKey("pkcs8", hexToBytes(priv), ALGORITHM, true, ["sign"]);
  const jwk = await subtle.exportKey("jwk", privateKey);
  const publicKey = await subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, ext: true },
    ALGORITHM,
    true,
    ["verify"],
  );
  return { publicKey, privateKey };
}
