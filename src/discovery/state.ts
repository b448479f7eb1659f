import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { isIPv4 } from "node:net";
import { dirname, basename, join } from "node:path";
import { isPort } from "./options.js";

/** The saved DHT routing table: addresses only (node ids are re-learned by ping). */
export interface DhtState {
  version: 1;
  savedAt: number;
  nodes: Array<{ host: string; port: number }>;
}

/** Saved nodes beyond this are dropped: enough to rejoin, bounded ping burst. */
export const MAX_STATE_NODES = 64;

function validNodes(nodes: unknown): Array<{ host: string; port: number }> {
  if (!Array.isArray(nodes)) return [];
  const out: Array<{ host: string; port: number }> = [];
  for (const n of nodes) {
    if (n && typeof n === "object" && isIPv4((n as { host?: unknown }).host as string) && isPort((n as { port?: unknown }).port)) {
      out.push({ host: (n as { host: string }).host, port: (n as { port: number }).port });
    }
    if (out.length >= MAX_STATE_NODES) break;
  }
  return out;
}

/**
 * Reads saved nodes; a missing file gives []. Sync on purpose: it runs once
 * in the Discovery constructor, which must stay synchronous (discovery-channel API).
 * Throws on a corrupt file so the caller can log it.
 */
export function loadDhtState(path: string): DhtState["nodes"] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<DhtState>;
  return validNodes(parsed?.nodes);
}

/** Writes the state atomically: temp file in the same directory, fsync, rename. */
export async function saveDhtState(path: string, nodes: unknown, now = Date.now()): Promise<number> {
  const state: DhtState = { version: 1, savedAt: now, nodes: validNodes(nodes) };
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(state) + "\n", "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return state.nodes.length;
}
