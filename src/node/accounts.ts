/**
 * The current user: anonymous or key sign-in, and ToolDb's password
 * accounts (the record `==<user>` holds the keys encrypted with the
 * password). The signed-in keys are saved with the node keys.
 *
 * Sign-up is local-first as in tool-db 2.6.6: it resolves once the record is
 * stored here and sent, offline too. Where two addresses sign up one name,
 * every node keeps the oldest (records/record.ts); when a sign-up made here
 * loses, to a server's refusal or to an older record, `signup-conflict-detected`
 * says so (2.6.6's event). With `{ ack: n }` sign-up resolves only once `n`
 * servers stored the record, and rejects (USER_EXISTS, PUT_REFUSED,
 * ACK_TIMEOUT) otherwise.
 */
import { sha256Hex } from "../crypto/sha256.js";
import type { EncryptedAccount, UserKeys } from "../users/user-adapter.js";
import { ErrorCode, ToolDbError, isToolDbError } from "../base/errors.js";
import { checkKeyLength, stringArgument } from "./api-arguments.js";
import { isWellFormedText } from "../base/text-formats.js";
import type { PutOptions, PutRefusal } from "./acks.js";
import type { LocalWriter } from "./local-writer.js";
import type { PutMessage } from "../records/messages.js";
import type { NodeContext } from "./node-context.js";
import { type NodeKeys, USER_KEYS } from "./node-keys.js";
import { randomName } from "../base/random.js";
import { rememberUserFor } from "./platform-defaults.js";
import type { ToolDbRecord } from "../records/record.js";
import { VerifyResult } from "../records/verify-result.js";
import type { UsernameConflict } from "./node-types.js";

/** The third argument of `signUp`; 2.6.6's (`to`, a list of peer ids) is accepted and ignored. */
export type SignUpOptions = PutOptions;

/** Sign-ups made here that may still lose (a few: one per name this node signed up recently). */
const WATCHED_SIGN_UPS = 64;

interface OwnSignUp {
  user: string;
  h: string;
  a: string;
  t: number;
}

/** A user name (the key `==<user>`: non-empty, no dots) and a password string. */
function checkCredentials(user: unknown, password: unknown): void {
  if (typeof user !== "string" || user.length === 0 || user.includes(".")) throw new ToolDbError(ErrorCode.INVALID_KEY, "user names are non-empty and have no dots");
  if (!isWellFormedText(user)) throw new ToolDbError(ErrorCode.INVALID_KEY, "user names must be well-formed UTF-16 (no lone surrogate)");
  checkKeyLength(`==${user}`);
  stringArgument("password", password);
}

export class Accounts {
  /** By key, oldest first. */
  private readonly ownSignUps = new Map<string, OwnSignUp>();

  constructor(
    private readonly db: NodeContext,
    private readonly nodeKeys: NodeKeys,
    private readonly writer: LocalWriter,
    /** ToolDb.getData: asks the mesh, else the local value. */
    private readonly getData: <T>(key: string, timeoutMs: number) => Promise<T | null>,
  ) {}

  async anonSignIn(): Promise<void> {
    await this.db.userAccount.anonUser();
    await this.nodeKeys.save(this.db.userAccount, USER_KEYS);
  }

  async keysSignIn(privateKey: string, username?: string): Promise<UserKeys> {
    const keys = await this.db.userAccount.getAccountFromPrivate(privateKey);
    await this.db.userAccount.setUser(keys, username ?? randomName());
    await this.remember();
    return keys;
  }

  /** Creates `==<user>` with the keys encrypted by the password; does not sign in, as in ToolDb. */
  async signUp(user: string, password: string, options?: SignUpOptions | string[]): Promise<PutMessage> {
    const key = `==${user}`;
    checkCredentials(user, password);
    if (await this.db.records.get(key)) throw new ToolDbError(ErrorCode.USER_EXISTS, "User already exists locally!");
    const account = new this.db.options.userAdapter(this.db);
    await account.ready;
    const encrypted = await account.encryptAccount(sha256Hex(password));
    encrypted.name = user;
    const putOptions = Array.isArray(options) ? {} : (options ?? {});
    try {
      const record = await this.writer.sign(account, key, encrypted);
      this.watch(user, record);
      return await this.writer.putSigned(record, putOptions);
    } catch (err) {
      if (isToolDbError(err, ErrorCode.PUT_REFUSED) && (err.details as PutRefusal | undefined)?.reason.startsWith(VerifyResult.CantOverwrite)) {
        throw new ToolDbError(ErrorCode.USER_EXISTS, `User already exists (${(err.details as PutRefusal).reason})`, err.details);
      }
      throw err;
    }
  }

  /** Fetches `==<user>` (the mesh's answer if one comes in time), decrypts it with the password and makes it the current user. */
  async signIn(user: string, password: string): Promise<EncryptedAccount> {
    checkCredentials(user, password);
    const stored = await this.getData<EncryptedAccount>(`==${user}`, 2000);
    if (!stored) throw new ToolDbError(ErrorCode.USER_NOT_FOUND, "Could not find user");
    const keys = await this.db.userAccount.decryptAccount(stored, sha256Hex(password));
    await this.db.userAccount.setUser(keys, user);
    await this.remember();
    return stored;
  }

  /** Saves the signed-in user's keys for the next start, where `rememberUser` says so (else only the anonymous keys stay saved). */
  private async remember(): Promise<void> {
    if (rememberUserFor(this.db.options)) await this.nodeKeys.save(this.db.userAccount, USER_KEYS, true);
  }

  /** A server refused one of this node's puts: if it was a sign-up made here, say so. */
  putRefused(refusal: PutRefusal): void {
    for (const [key, own] of this.ownSignUps) {
      if (own.h !== refusal.h) continue;
      this.lost(key, own, `Username conflict: ${refusal.reason}`);
      return;
    }
  }

  /** A sign-up met another: if one made here lost, say so. */
  conflictResolved(conflict: UsernameConflict): void {
    const own = this.ownSignUps.get(conflict.username);
    if (!own || conflict.winner !== "remote" || own.a !== conflict.localAddress || own.t !== conflict.localTimestamp) return;
    this.lost(conflict.username, own, `Username conflict: peer registered first at ${new Date(conflict.remoteTimestamp).toISOString()}`);
  }

  private watch(user: string, record: ToolDbRecord): void {
    this.ownSignUps.delete(record.k);
    if (this.ownSignUps.size >= WATCHED_SIGN_UPS) this.ownSignUps.delete(this.ownSignUps.keys().next().value as string);
    this.ownSignUps.set(record.k, { user, h: record.h, a: record.a, t: record.t });
  }

  private lost(key: string, own: OwnSignUp, error: string): void {
    this.ownSignUps.delete(key);
    this.db.emit("signup-conflict-detected", { username: own.user, localTimestamp: own.t, error });
  }
}
