/**
 * Wire messages of the broadcast tree between tooldb-dht servers
 * (capability `pt1`, src/node/broadcast, docs/protocol-broadcast.md): `ihave`
 * announces record hashes sent whole elsewhere, `graft` asks for some and
 * puts the link on the tree, `prune` takes the link off it. Tree puts carry
 * `r` (hops from where the record entered the tree) and `o` (that server's
 * client id).
 */
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { isLowerHex } from "../base/text-formats.js";

export const TREE_LIMITS = {
  /** Record hashes in one ihave or graft. */
  maxHashes: 1024,
  /** Longest record key an ihave names beside a hash (`ks`; a record key's own limit). */
  maxKeyLength: 1024,
  /** Largest hop count a tree put may carry. */
  maxRound: 1_000_000,
  /** Longest origin id (as a hop id). */
  maxOriginLength: 128,
  /** Largest link weight a tree put's `w` may carry (src/node/broadcast/link-weight.ts). */
  maxLinkWeight: Number.MAX_SAFE_INTEGER,
} as const;

export interface TreeHashesMessage {
  type: "ihave" | "graft";
  id: string;
  to: string[];
  hs: string[];
  /** ihave only: each hash's record key (null: not named), so a receiver holding it asks for nothing (src/node/broadcast/held-check.ts). */
  ks?: (string | null)[];
}

export interface TreePruneMessage {
  type: "prune";
  id: string;
  to: string[];
  /** With `h`: not this link but the heaviest link (weight `w`) on the path by which the record `h` came to the receiver is to go. */
  w?: number;
  h?: string;
}

export type TreeMessage = TreeHashesMessage | TreePruneMessage;


/** Validates an ihave, graft or prune (the common fields are checked by the caller); false for any other type. */
export function checkTreeMessage(m: Record<string, unknown>, type: string): boolean {
  if (type === "prune") {
    // The hint of a prune is advisory too: a malformed one makes it a plain prune.
    if (!(isLinkWeight(m.w) && isLowerHex(m.h, 64))) {
      delete m.w;
      delete m.h;
    }
    return true;
  }
  if (type !== "ihave" && type !== "graft") return false;
  const hs = m.hs;
  if (!Array.isArray(hs) || hs.length > TREE_LIMITS.maxHashes || !hs.every((h) => isLowerHex(h, 64))) {
    throw new ToolDbError(ErrorCode.BAD_MESSAGE, `${type}.hs must be at most ${TREE_LIMITS.maxHashes} record hashes`);
  }
  // The keys beside an ihave's hashes are advisory: malformed, they are dropped and every hash is treated as unnamed.
  if (type === "ihave" && m.ks !== undefined && !isKeyList(m.ks, hs.length)) delete m.ks;
  // An honest node grafts each missing hash once (tree-repair.ts): a list repeating one asked for the same record again and again.
  if (type === "graft" && hs.length > 1 && new Set(hs).size !== hs.length) throw new ToolDbError(ErrorCode.BAD_MESSAGE, "graft.hs lists a record hash twice");
  return true;
}

/** The tree fields of a put are advisory: malformed ones are dropped, the put stays. */
export function dropBadTreeFields(m: Record<string, unknown>): void {
  const r = m.r;
  if (r !== undefined && !(typeof r === "number" && Number.isSafeInteger(r) && r >= 0 && r <= TREE_LIMITS.maxRound)) delete m.r;
  if (m.o !== undefined && !(typeof m.o === "string" && m.o.length <= TREE_LIMITS.maxOriginLength)) delete m.o;
  if (m.w !== undefined && !isLinkWeight(m.w)) delete m.w;
}

function isKeyList(ks: unknown, length: number): boolean {
  return Array.isArray(ks) && ks.length === length && ks.every((k) => k === null || (typeof k === "string" && k.length <= TREE_LIMITS.maxKeyLength));
}

function isLinkWeight(w: unknown): w is number {
  return typeof w === "number" && Number.isSafeInteger(w) && w >= 0 && w <= TREE_LIMITS.maxLinkWeight;
}
