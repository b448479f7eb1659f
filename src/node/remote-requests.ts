/**
 * Requests this node sends to its peers and how their replies are awaited
 * (by message id, bounded by a timeout): gets (plain and CRDT), key queries
 * and server functions.
 */
import type { NodeContext } from "./node-context.js";
import type { FunctionReturn } from "./node-types.js";
import { randomId } from "../base/random.js";
import type { ToolDbRecord } from "../records/record.js";
import { awaitNewest } from "./get-replies.js";

export class RemoteRequests {
  constructor(private readonly db: NodeContext) {}

  /**
   * The stored record (for a CRDT key, the whole document) under `finalKey`.
   * Without a local copy: every peer is asked (as tool-db 2.6.6 does); the
   * newest verified reply for that key (see get-replies.ts), else what
   * arrived meanwhile. With one and a server linked (a fresh read): only the
   * servers are asked, and the store's
   * record is returned once a reply was merged (the newer record wins; a
   * CRDT document gains the other changes) or after `timeoutMs`. With a local
   * copy and no server linked (offline, or only clients): the local copy at
   * once. So a server reading a key it holds asks its server peers, never
   * its clients.
   */
  async getRecord(finalKey: string, timeoutMs: number, type: "get" | "crdtGet"): Promise<ToolDbRecord | undefined> {
    const db = this.db;
    const local = await db.records.get(finalKey);
    if (db.network.peers.length === 0 || db.isClosed) return local;
    const id = randomId();
    let asked = 0;
    const reply = new Promise<ToolDbRecord | undefined>((resolve) => {
      const wait = awaitNewest(db, id, finalKey, timeoutMs, resolve);
      asked = db.network.sendToAll({ type, id, key: finalKey }, local ? (s) => s.isServer : undefined);
      wait.asked(asked);
    });
    if (local && asked === 0) return local;
    const answer = await reply;
    return (await db.records.get(finalKey).catch(() => undefined)) ?? answer;
  }

  /** Keys starting with `prefix`, from the local store and every peer that answers within `timeoutMs`. */
  async queryKeys(prefix: string, timeoutMs: number): Promise<string[]> {
    const db = this.db;
    const found = new Set(await db.records.query(prefix));
    if (db.network.peers.length === 0 || db.isClosed) return [...found].sort();
    const id = randomId();
    await new Promise<void>((resolve) => {
      db.requests.add(
        id,
        timeoutMs,
        (message) => {
          if (message.type === "queryAck") for (const k of message.keys) if (k.startsWith(prefix)) found.add(k);
          return true;
        },
        resolve,
      );
      db.network.sendToAll({ type: "query", id, key: prefix });
    });
    return [...found].sort();
  }

  /** Runs a server function on the first peer that has it. */
  async doFunction(name: string, args: unknown, timeoutMs: number): Promise<FunctionReturn> {
    const db = this.db;
    const peers = db.network.peers.length;
    if (peers === 0) return { code: "ERR", return: "Not connected" };
    const id = randomId();
    let notFound = 0;
    return new Promise<FunctionReturn>((resolve) => {
      db.requests.add(
        id,
        timeoutMs,
        (message) => {
          if (message.type !== "functionReturn") return true;
          if (message.code === "NOT_FOUND" && ++notFound < peers) return true;
          resolve({ code: message.code, return: message.return });
        },
        () => resolve({ code: "ERR", return: "Timed out" }),
      );
      db.network.sendToAll({ type: "function", id, function: name, args });
    });
  }
}
