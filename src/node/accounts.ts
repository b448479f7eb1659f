/**
 * The current user: anonymous or key sign-in, and ToolDb's password
 * accounts (the record `==<user>` holds the keys encrypted with the
 * password). The signed-in keys are saved with the node keys.
 */
import { sha256Hex } from "../crypto/sha256.js";
import type { EncryptedAccount, UserKeys } from "../users/user-adapter.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import type { LocalWriter } from "./local-writer.js";
import type { PutMessage } from "../records/messages.js";
import type { NodeContext } from "./node-context.js";
import { type NodeKeys, USER_KEYS } from "./node-keys.js";
import { randomName } from "../base/random.js";

export class Accounts {
  constructor(
    private readonly db: NodeContext,
    private readonly nodeKeys: NodeKeys,
    private readonly writer: LocalWriter,
    /** ToolDb.getData: the local value, else the network's. */
    private readonly getData: <T>(key: string, timeoutMs: number) => Promise<T | null>,
  ) {}

  async anonSignIn(): Promise<void> {
    await this.db.userAccount.anonUser();
    await this.nodeKeys.save(this.db.userAccount, USER_KEYS);
  }

  async keysSignIn(privateKey: string, username?: string): Promise<UserKeys> {
    const keys = await this.db.userAccount.getAccountFromPrivate(privateKey);
    await this.db.userAccount.setUser(keys, username ?? randomName());
    await this.nodeKeys.save(this.db.userAccount, USER_KEYS);
    return keys;
  }

  /** Creates `==<user>` with the keys encrypted by the password; does not sign in, as in ToolDb. */
  async signUp(user: string, password: string): Promise<PutMessage> {
    const key = `==${user}`;
    if (user.length === 0 || user.includes(".")) throw new ToolDbError(ErrorCode.INVALID_KEY, "user names are non-empty and have no dots");
    if (await this.db.records.get(key)) throw new ToolDbError(ErrorCode.USER_EXISTS, `user ${user} already exists`);
    if (this.db.network.peers.length > 0 && (await this.getData(key, 1000)) !== null) {
      throw new ToolDbError(ErrorCode.USER_EXISTS, `user ${user} already exists`);
    }
    const account = new this.db.options.userAdapter(this.db);
    await account.ready;
    const encrypted = await account.encryptAccount(sha256Hex(password));
    encrypted.name = user;
    return this.writer.put(account, key, encrypted);
  }

  /** Fetches `==<user>`, decrypts it with the password and makes it the current user. */
  async signIn(user: string, password: string): Promise<EncryptedAccount> {
    const stored = await this.getData<EncryptedAccount>(`==${user}`, 2000);
    if (!stored) throw new ToolDbError(ErrorCode.USER_NOT_FOUND, `user ${user} not found`);
    const keys = await this.db.userAccount.decryptAccount(stored, sha256Hex(password));
    await this.db.userAccount.setUser(keys, user);
    await this.nodeKeys.save(this.db.userAccount, USER_KEYS);
    return stored;
  }
}
