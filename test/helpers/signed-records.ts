import { signRecord } from "../../src/node/record-signer.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import type { ToolDb } from "../../src/node/tooldb.js";
import { EcdsaUser } from "../../src/users/ecdsa-user.js";
import { sha256Hex } from "../../src/crypto/sha256.js";

let author: Promise<EcdsaUser> | undefined;

/** One key pair for every record a test run signs (generating keys is the slow part of small batches). */
export function testAuthor(): Promise<EcdsaUser> {
  author ??= (async () => {
    const user = new EcdsaUser();
    await user.ready;
    await user.anonUser();
    return user;
  })();
  return author;
}

/**
 * Signs `count` records `${prefix}${i}` = { i, tag } at t0 + i, in parallel
 * batches (signing dominates: bulk-sign before the part a test measures).
 */
export async function signedRecords(count: number, prefix: string, t0: number, tag = "v1"): Promise<ToolDbRecord[]> {
  const user = await testAuthor();
  const out: ToolDbRecord[] = new Array(count);
  for (let i = 0; i < count; i += 1024) {
    await Promise.all(
      Array.from({ length: Math.min(1024, count - i) }, async (_, j) => {
        out[i + j] = await signRecord(user, `${prefix}${i + j}`, { i: i + j, tag }, t0 + i + j, 0, false);
      }),
    );
  }
  return out;
}

/**
 * `count` account records `==<prefix>N` = { name: <prefix>N }, all signed by
 * one key (a bot needs no key per account), at `t` (default: the time each is signed).
 */
export async function botSignUps(prefix: string, count: number, t?: number): Promise<ToolDbRecord[]> {
  const user = await testAuthor();
  return Promise.all(Array.from({ length: count }, (_, i) => signRecord(user, `==${prefix}${i}`, { name: `${prefix}${i}` }, t ?? Date.now(), 0, false)));
}

/** How many account records (`==<prefix>…`) a node stores. */
export const accounts = async (db: ToolDb, prefix: string): Promise<number> => (await db.records.query(`==${prefix}`, 100_000)).length;

/**
 * Records shaped as `signedRecords`' ones, hashed but not signed (`s` empty):
 * for tests of what never verifies a record (the sync index, range sums),
 * where signing was most of their time. No server accepts them.
 */
export function unsignedRecords(count: number, prefix: string, t0: number, tag = "v1"): ToolDbRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const [k, v, t] = [`${prefix}${i}`, { i, tag }, t0 + i];
    return { k, a: "unsigned", n: 0, t, h: sha256Hex(JSON.stringify([k, v, t])), s: "", v, c: null };
  });
}

/** Stores records directly (as if written long ago), index included. */
export async function seed(db: ToolDb, records: ToolDbRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 1024) await Promise.all(records.slice(i, i + 1024).map((r) => db.records.merge(r)));
}

/** key → record hash of everything a node stores, streamed from its store. */
export async function contents(db: ToolDb): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [key, raw] of db.store.range()) out.set(key, (JSON.parse(raw) as ToolDbRecord).h);
  return out;
}
