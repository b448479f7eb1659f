import { bytesToHex, hexToBytes, toolDbBase64ToBytes, toolDbBytesToBase64, utf8ToBytes } from "./encoding.js";

/**
 * Password encryption of account keys, in @tool-db/ecdsa-user's format so
 * accounts move between tool-db 2.6.6 and tooldb-dht: PBKDF2-SHA256 (100k
 * rounds, ToolDb's fixed salt) -> AES-GCM-128, 12-byte IV.
 * The fixed salt is a known weakness of that format (see docs/protocol-records.md).
 */
const subtle = globalThis.crypto.subtle;
const TOOLDB_SALT = "t6sa@8d7!2\u00f1s?=adjq2ng";
const PBKDF2_ROUNDS = 100_000;

/** The AES-GCM-128 key of a password (@tool-db/ecdsa-user's `generateKeyFromPassword`). */
export async function generateKeyFromPassword(password: string): Promise<CryptoKey> {
  const material = await subtle.importKey("raw", utf8ToBytes(password), { name: "PBKDF2" }, false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "PBKDF2", salt: utf8ToBytes(TOOLDB_SALT), iterations: PBKDF2_ROUNDS, hash: "SHA-256" },
    material,
    { name: "AES-GCM", length: 128 },
    false,
    ["encrypt", "decrypt"],
  );
}

export interface PasswordCiphertext {
  /** hex ciphertext (with GCM tag) */
  ct: string;
  /** ToolDb-style base64 of the IV */
  iv: string;
}

export async function encryptWithPassword(plaintext: string, password: string): Promise<PasswordCiphertext> {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const key = await generateKeyFromPassword(password);
  const ct = await subtle.encrypt({ name: "AES-GCM", iv }, key, utf8ToBytes(plaintext));
  return { ct: bytesToHex(new Uint8Array(ct)), iv: toolDbBytesToBase64(iv) };
}

/** Throws when the password is wrong or the data is damaged (GCM tag check). */
export async function decryptWithPassword(cipher: PasswordCiphertext, password: string): Promise<string> {
  const key = await generateKeyFromPassword(password);
  const iv = toolDbBase64ToBytes(cipher.iv);
  const plain = await subtle.decrypt({ name: "AES-GCM", iv }, key, hexToBytes(cipher.ct));
  return new TextDecoder().decode(plain);
}
