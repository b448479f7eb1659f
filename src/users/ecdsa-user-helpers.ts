/**
 * The helpers @tool-db/ecdsa-user 1.1.3 exports next to its user adapter,
 * under the same names and signatures: group encryption (crypto/group-keys.ts)
 * and its password and WebCrypto helpers, so code importing them from that
 * package runs with only the import changed. Its default export, the user
 * adapter, is `EcdsaUser`.
 */
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { bytesToHex, hexToBytes, utf8ToBytes } from "../crypto/encoding.js";
import { generateKeyFromPassword } from "../crypto/password.js";

export {
  type ECDHKeyPair,
  type EncryptedData,
  type WrappedGroupKey,
  generateECDHKeyPair,
  importECDHPublicKey,
  importECDHPrivateKey,
  deriveSharedKey,
  importAESKey,
  encryptWithKey,
  decryptWithKey,
  wrapGroupKey,
  unwrapGroupKey,
  generateIv,
} from "../crypto/group-keys.js";
export { generateKeyFromPassword } from "../crypto/password.js";

/** The WebCrypto object (`globalThis.crypto`); throws where there is none (a page not served over HTTPS). */
export function getCrypto(): Crypto {
  if (globalThis.crypto?.subtle === undefined) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "WebCrypto (crypto.subtle) is not available: serve the page over HTTPS or from localhost");
  return globalThis.crypto;
}

/** A P-256 key pair for signing (ECDSA) or key agreement (ECDH). */
export function generateKeyPair(mode: "ECDSA" | "ECDH", extractable = false): Promise<CryptoKeyPair> {
  const usages: KeyUsage[] = mode === "ECDSA" ? ["sign", "verify"] : ["deriveKey", "deriveBits"];
  return getCrypto().subtle.generateKey({ name: mode, namedCurve: "P-256" }, extractable, usages) as Promise<CryptoKeyPair>;
}

/** AES-GCM with the password's key (`generateKeyFromPassword`) under the given IV: hex, or undefined on failure as in 1.1.3. */
export async function encryptWithPass(secretmessage: string, password: string, vector: Uint8Array): Promise<string | undefined> {
  try {
    const key = await generateKeyFromPassword(password);
    return bytesToHex(new Uint8Array(await getCrypto().subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(vector) }, key, utf8ToBytes(secretmessage))));
  } catch {
    return undefined;
  }
}

/** The text `encryptWithPass` encrypted, or undefined (wrong password, other IV, damaged data) as in 1.1.3. */
export async function decryptWithPass(data: string, password: string, vector: Uint8Array): Promise<string | undefined> {
  try {
    const key = await generateKeyFromPassword(password);
    return new TextDecoder().decode(await getCrypto().subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(vector) }, key, hexToBytes(data)));
  } catch {
    return undefined;
  }
}
