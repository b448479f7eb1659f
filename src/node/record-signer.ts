import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import { proofOfWork } from "../records/proof-of-work.js";
import { valueJson } from "./api-arguments.js";
import { boundHashPrefix, legacyHashPrefix, type ToolDbRecord } from "../records/record.js";

/** Builds and signs a record for `key` as `account` (proof of work first when `pow` > 0). */
export async function signRecord(
  account: ToolDbUserAdapter,
  key: string,
  value: unknown,
  timestamp: number,
  pow: number,
  legacy: boolean,
  crdtType: string | null = null,
): Promise<ToolDbRecord> {
  const a = account.getAddress() ?? "";
  // Sign exactly what receivers will parse: JSON drops undefined fields, functions, etc.
  value = JSON.parse(valueJson(value)) as unknown;
  const prefix = legacy ? legacyHashPrefix(value, a, timestamp) : boundHashPrefix(key, value, a, timestamp);
  const { nonce, hash } = await proofOfWork(prefix, pow);
  const s = await account.signData(hash);
  return { k: key, a, n: nonce, t: timestamp, h: hash, s, v: value, c: crdtType };
}
