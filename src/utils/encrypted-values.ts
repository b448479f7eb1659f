/**
 * Values only a group can read. The value is JSON-encoded and encrypted with
 * the group's AES key (`encryptWithKey`), so what is signed, stored on servers
 * and relayed is `{ iv, ct }`: the same record any ToolDb node verifies, and
 * what an app on @tool-db/ecdsa-user reads with `decryptWithKey` + `JSON.parse`.
 * Members get the group key from `unwrapGroupKey` (see docs/tool-db-api.md,
 * "Private data for groups"). Keys and authors stay visible: only values are
 * private.
 */
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { decryptWithKey, encryptWithKey, importAESKey, type EncryptedData } from "../crypto/group-keys.js";

/** What the helpers need of a node: ToolDb's putData and getData. */
export interface ValueStore {
  putData(key: string, value: unknown, userNamespaced?: boolean): Promise<unknown>;
  getData<T = unknown>(key: string, userNamespaced?: boolean, timeoutMs?: number): Promise<T | null>;
}

/** A group key as hex (`generateGroupKey`, `unwrapGroupKey`) or already imported (`importAESKey`). */
export type GroupKey = string | CryptoKey;

/** `db` when it has ToolDb's putData and getData (a missing or wrong first argument was a TypeError). */
function valueStore(db: ValueStore): ValueStore {
  const d = db as Partial<ValueStore> | null | undefined;
  if (typeof d?.putData !== "function" || typeof d.getData !== "function") {
    throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `db must be a ToolDb (with putData and getData), got ${describeValue(db)}`);
  }
  return db;
}

function asCryptoKey(key: GroupKey): Promise<CryptoKey> {
  return typeof key === "string" ? importAESKey(key) : Promise.resolve(key);
}

/** Puts `value` under `key` encrypted with the group key; resolves what `putData` resolves. */
export async function putEncrypted(db: ValueStore, key: string, value: unknown, groupKey: GroupKey, userNamespaced = false): Promise<unknown> {
  valueStore(db);
  const sealed = await encryptWithKey(JSON.stringify(value), await asCryptoKey(groupKey));
  return db.putData(key, sealed, userNamespaced);
}

/**
 * Gets `key` (as `getData` does) and decrypts it with the group key; null
 * when there is no value. Rejects with DECRYPTION_FAILED when the value was
 * not encrypted with this key or was changed.
 */
export async function getDecrypted<T = unknown>(db: ValueStore, key: string, groupKey: GroupKey, userNamespaced = false, timeoutMs?: number): Promise<T | null> {
  const sealed = await valueStore(db).getData<EncryptedData>(key, userNamespaced, timeoutMs);
  if (sealed === null) return null;
  const text = await decryptWithKey(sealed, await asCryptoKey(groupKey));
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new ToolDbError(ErrorCode.DECRYPTION_FAILED, "the decrypted value is not JSON (not written by putEncrypted)", err);
  }
}
