/**
 * Private data for groups, in @tool-db/ecdsa-user 1.1.3's formats and under
 * its names and signatures, so code written for it runs unchanged and data
 * moves both ways:
 * - ECDH P-256 key pairs as hex (public SPKI, private PKCS8);
 * - a key shared by two members, derived by ECDH as an AES-GCM-256 key;
 * - a group key (32 random bytes as hex, `generateGroupKey`) wrapped for each
 *   member with the key it shares with the sender: `{ iv, key }`;
 * - messages encrypted with AES-GCM-256 under a 12-byte random IV: `{ iv, ct }`.
 * IVs are in tool-db's base64 (`uint8ToBase64`), ciphertexts hex with the GCM
 * tag. WebCrypto only: Node ≥ 20 and browsers.
 */
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { bytesToHex, hexToBytes, toolDbBase64ToBytes, toolDbBytesToBase64, utf8ToBytes } from "./encoding.js";

export interface ECDHKeyPair {
  /** hex SPKI */
  publicKey: string;
  /** hex PKCS8 */
  privateKey: string;
}

/** An AES-GCM message: `iv` tool-db base64 of 12 bytes, `ct` hex ciphertext and tag. */
export interface EncryptedData {
  iv: string;
  ct: string;
}

/** A group key encrypted for one member: `iv` as above, `key` hex ciphertext and tag. */
export interface WrappedGroupKey {
  iv: string;
  key: string;
}

const ECDH = { name: "ECDH", namedCurve: "P-256" } as const;
const AES_GCM_256 = { name: "AES-GCM", length: 256 } as const;
const IV_BYTES = 12;

function subtle(): SubtleCrypto {
  return globalThis.crypto.subtle;
}

/** Hex to bytes, refusing what is not hex (tool-db reads the pairs it finds and ignores the rest). */
function keyBytes(hex: string, what: string): Uint8Array<ArrayBuffer> {
  try {
    return hexToBytes(hex);
  } catch (err) {
    throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${what} is not hex`, err);
  }
}

/** A fresh 12-byte IV for AES-GCM (@tool-db/ecdsa-user's `generateIv`). */
export function generateIv(): Uint8Array<ArrayBuffer> {
  return globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
}

/** A new ECDH P-256 key pair, hex encoded, to publish the public half and keep the private one. */
export async function generateECDHKeyPair(): Promise<ECDHKeyPair> {
  const pair = (await subtle().generateKey(ECDH, true, ["deriveKey", "deriveBits"])) as CryptoKeyPair;
  const [spki, pkcs8] = await Promise.all([subtle().exportKey("spki", pair.publicKey), subtle().exportKey("pkcs8", pair.privateKey)]);
  return { publicKey: bytesToHex(new Uint8Array(spki)), privateKey: bytesToHex(new Uint8Array(pkcs8)) };
}

export async function importECDHPublicKey(hexKey: string): Promise<CryptoKey> {
  return subtle().importKey("spki", keyBytes(hexKey, "the ECDH public key"), ECDH, true, []);
}

export async function importECDHPrivateKey(hexKey: string): Promise<CryptoKey> {
  return subtle().importKey("pkcs8", keyBytes(hexKey, "the ECDH private key"), ECDH, true, ["deriveKey", "deriveBits"]);
}

/** The AES-GCM-256 key two members share: our private key with their public key gives what theirs with ours gives. */
export async function deriveSharedKey(ourPrivateKey: CryptoKey, theirPublicKey: CryptoKey): Promise<CryptoKey> {
  cryptoKey(ourPrivateKey, "our private key (importECDHPrivateKey)");
  cryptoKey(theirPublicKey, "their public key (importECDHPublicKey)");
  return subtle().deriveKey({ name: "ECDH", public: theirPublicKey }, ourPrivateKey, AES_GCM_256, false, ["encrypt", "decrypt"]);
}

/** A raw 256-bit AES-GCM key from hex (a group key from `generateGroupKey` or `unwrapGroupKey`). */
export async function importAESKey(hexKey: string): Promise<CryptoKey> {
  return subtle().importKey("raw", keyBytes(hexKey, "the AES key"), AES_GCM_256, false, ["encrypt", "decrypt"]);
}

/**
 * `key` when it is a WebCrypto key: a hex string or anything else is
 * INVALID_ARGUMENT naming `what` (WebCrypto threw a TypeError, and decrypting
 * called it a wrong key).
 */
function cryptoKey(key: unknown, what: string): CryptoKey {
  if (!(key instanceof globalThis.CryptoKey)) {
    const hint = typeof key === "string" ? " (a hex key: importAESKey(hex) first)" : "";
    throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${what} must be a CryptoKey${hint}, got ${describeValue(key)}`);
  }
  return key;
}

async function seal(plain: Uint8Array<ArrayBuffer>, key: CryptoKey): Promise<{ iv: string; hex: string }> {
  cryptoKey(key, "the key");
  const iv = generateIv();
  const sealed = await subtle().encrypt({ name: "AES-GCM", iv }, key, plain);
  return { iv: toolDbBytesToBase64(iv), hex: bytesToHex(new Uint8Array(sealed)) };
}

/** Rejects with DECRYPTION_FAILED on a wrong key or a changed ciphertext (the GCM tag does not match). */
async function open(iv: string, hex: string, key: CryptoKey): Promise<Uint8Array> {
  let ivBytes: Uint8Array<ArrayBuffer>;
  let sealed: Uint8Array<ArrayBuffer>;
  try {
    ivBytes = toolDbBase64ToBytes(iv);
    sealed = hexToBytes(hex);
  } catch (err) {
    throw new ToolDbError(ErrorCode.DECRYPTION_FAILED, "not an encrypted value ({ iv, ct })", err);
  }
  try {
    return new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv: ivBytes }, key, sealed));
  } catch (err) {
    throw new ToolDbError(ErrorCode.DECRYPTION_FAILED, "wrong key or damaged ciphertext", err);
  }
}

export async function encryptWithKey(message: string, key: CryptoKey): Promise<EncryptedData> {
  if (typeof message !== "string") throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `the message must be a string, got ${describeValue(message)}`);
  const { iv, hex } = await seal(utf8ToBytes(message), key);
  return { iv, ct: hex };
}

export async function decryptWithKey(encrypted: EncryptedData, key: CryptoKey): Promise<string> {
  if (!encrypted || typeof encrypted.iv !== "string" || typeof encrypted.ct !== "string") {
    throw new ToolDbError(ErrorCode.DECRYPTION_FAILED, "not an encrypted value ({ iv, ct })");
  }
  cryptoKey(key, "the key");
  return new TextDecoder().decode(await open(encrypted.iv, encrypted.ct, key));
}

async function sharedKey(ourPrivateKeyHex: string, theirPublicKeyHex: string): Promise<CryptoKey> {
  const [ours, theirs] = await Promise.all([importECDHPrivateKey(ourPrivateKeyHex), importECDHPublicKey(theirPublicKeyHex)]);
  return deriveSharedKey(ours, theirs);
}

/** Encrypts the hex `groupKey` for the member whose ECDH public key is given; only that member can unwrap it. */
export async function wrapGroupKey(groupKey: string, ourPrivateKeyHex: string, theirPublicKeyHex: string): Promise<WrappedGroupKey> {
  const plain = keyBytes(groupKey, "the group key");
  const { iv, hex } = await seal(plain, await sharedKey(ourPrivateKeyHex, theirPublicKeyHex));
  return { iv, key: hex };
}

/** The hex group key a sender wrapped for us, given our ECDH private key and the sender's public key. */
export async function unwrapGroupKey(wrappedKey: WrappedGroupKey, ourPrivateKeyHex: string, senderPublicKeyHex: string): Promise<string> {
  if (!wrappedKey || typeof wrappedKey.iv !== "string" || typeof wrappedKey.key !== "string") {
    throw new ToolDbError(ErrorCode.DECRYPTION_FAILED, "not a wrapped group key ({ iv, key })");
  }
  return bytesToHex(await open(wrappedKey.iv, wrappedKey.key, await sharedKey(ourPrivateKeyHex, senderPublicKeyHex)));
}
