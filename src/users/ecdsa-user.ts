import { ErrorCode, ToolDbError } from "../base/errors.js";
import { randomName } from "../base/random.js";
import {
  addressOf,
  exportKeyPairHex,
  generateSigningKeys,
  importKeyPairHex,
  keyPairFromPrivateHex,
  signWithKey,
  verifyWithAddress,
} from "../crypto/ecdsa.js";
import { decryptWithPassword, encryptWithPassword } from "../crypto/password.js";
import { type EncryptedAccount, type SignedHash, ToolDbUserAdapter, type UserKeys } from "./user-adapter.js";

/** What every P-256 SPKI starts with, up to and including the uncompressed-point byte 04. */
const P256_SPKI_HEADER_HEX = "3059301306072a8648ce3d020106082a8648ce3d03010703420004";

interface Identity {
  keys: CryptoKeyPair;
  address: string;
  name: string;
}

/**
 * ECDSA P-256 identities over WebCrypto (Node >= 20 and browsers), wire- and
 * export-compatible with @tool-db/ecdsa-user.
 */
export class EcdsaUser extends ToolDbUserAdapter {
  private identity: Identity | undefined;
  private pending: Promise<void>;

  constructor(_db?: unknown) {
    super();
    this.pending = this.anonUser();
    // Failure is reported through `ready`; never as an unhandled rejection.
    this.pending.catch(() => undefined);
  }

  get ready(): Promise<void> {
    return this.pending;
  }

  async anonUser(): Promise<void> {
    const keys = await generateSigningKeys();
    this.identity = { keys, address: await addressOf(keys.publicKey), name: randomName() };
  }

  async setUser(account: UserKeys, name?: string): Promise<void> {
    const keys = await importKeyPairHex(account.pub, account.priv);
    const identity = { keys, address: await addressOf(keys.publicKey), name: name ?? account.name ?? randomName() };
    await this.pending.catch(() => undefined);
    this.identity = identity;
  }

  async signData(data: string): Promise<string> {
    return signWithKey(data, (await this.current()).keys.privateKey);
  }

  verifySignature(message: SignedHash): Promise<boolean> {
    if (!message || typeof message.h !== "string" || typeof message.a !== "string" || typeof message.s !== "string") {
      return Promise.resolve(false);
    }
    return verifyWithAddress(message.h, message.s, message.a);
  }

  async getAccountFromPrivate(privateKey: string): Promise<UserKeys> {
    let keys: CryptoKeyPair;
    try {
      keys = await keyPairFromPrivateHex(privateKey);
    } catch (err) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "not a PKCS8 P-256 private key in hex", err);
    }
    return exportKeyPairHex(keys);
  }

  async encryptAccount(password: string): Promise<EncryptedAccount> {
    const identity = await this.current();
    const hexed = await exportKeyPairHex(identity.keys);
    const { ct, iv } = await encryptWithPassword(JSON.stringify(hexed), password);
    return { name: identity.name, keys: ct, iv };
  }

  async exportKeys(): Promise<UserKeys> {
    const identity = await this.current();
    return { ...(await exportKeyPairHex(identity.keys)), name: identity.name };
  }

  async decryptAccount(account: EncryptedAccount, password: string): Promise<UserKeys> {
    if (!account || typeof account.keys !== "string" || typeof account.iv !== "string") {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "not an encrypted account");
    }
    let plain: string;
    try {
      plain = await decryptWithPassword({ ct: account.keys, iv: account.iv }, password);
    } catch (err) {
      throw new ToolDbError(ErrorCode.WRONG_PASSWORD, "wrong password or damaged account", err);
    }
    const parsed = JSON.parse(plain) as { pub: string; priv: string };
    return { pub: parsed.pub, priv: parsed.priv, name: account.name };
  }

  /** @tool-db/ecdsa-user's `getPublic`: the public key as hex x‖y (the SPKI without its fixed P-256 header and the 04 byte). */
  async getPublic(): Promise<string> {
    const { pub } = await exportKeyPairHex((await this.current()).keys);
    return pub.slice(P256_SPKI_HEADER_HEX.length);
  }

  getAddress(): string | undefined {
    return this.identity?.address;
  }

  getUsername(): string | undefined {
    return this.identity?.name;
  }

  private async current(): Promise<Identity> {
    await this.pending;
    if (!this.identity) throw new ToolDbError(ErrorCode.NOT_SIGNED_IN, "no key pair");
    return this.identity;
  }
}
