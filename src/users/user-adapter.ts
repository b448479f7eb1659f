/**
 * The user (identity) contract, shaped like ToolDb's ToolDbUserAdapter so
 * ToolDb code keeps working. Third-party adapters extend this class and run
 * test/compliance/user-suite against themselves.
 *
 * Contract:
 * - `ready` resolves once the adapter holds a key pair (a fresh anonymous one at construction).
 * - `getAddress()` is the public identity written into records' `a` field.
 * - `signData(s)` signs the string; `verifySignature({h,a,s})` checks `s` over `h`
 *   against address `a`, resolves false (never rejects) on any malformed input.
 * - `exportKeys()` gives the key pair for `setUser` (the node's key store keeps it);
 * - `encryptAccount(pw)` / `decryptAccount(acc, pw)` round-trip the keys;
 *   decrypting with a wrong password rejects with code WRONG_PASSWORD.
 */
export interface UserKeys {
  /** public key, hex SPKI */
  pub: string;
  /** private key, hex PKCS8 */
  priv: string;
  name?: string;
}

/** Password-encrypted account, as @tool-db/ecdsa-user stores it under `==<user>`. */
export interface EncryptedAccount {
  name: string;
  /** hex AES-GCM ciphertext of JSON {pub, priv} */
  keys: string;
  /** IV, ToolDb-style base64 */
  iv: string;
}

export interface SignedHash {
  h: string;
  a: string;
  s: string;
}

export interface UserAdapterConstructor {
  new (db?: unknown): ToolDbUserAdapter;
}

export abstract class ToolDbUserAdapter {
  abstract get ready(): Promise<void>;
  abstract anonUser(): Promise<void>;
  abstract setUser(account: UserKeys, name?: string): Promise<void>;
  abstract signData(data: string): Promise<string>;
  abstract verifySignature(message: SignedHash): Promise<boolean>;
  abstract getAccountFromPrivate(privateKey: string): Promise<UserKeys>;
  abstract encryptAccount(password: string): Promise<EncryptedAccount>;
  /** The current key pair in clear (for the node's own key store). */
  abstract exportKeys(): Promise<UserKeys>;
  abstract decryptAccount(account: EncryptedAccount, password: string): Promise<UserKeys>;
  abstract getAddress(): string | undefined;
  abstract getUsername(): string | undefined;
}
