/**
 * Requests this node sends to its peers and how their replies are awaited
 * (by message id, bounded by a timeout): gets (plain and CRDT), key queries
 * and server functions.
 */
import type { NodeContext } from "./node-context.js";
import type { FunctionReturn } from "./node-types.js";
import { randomId } from "../base/random.js";
import type { ToolDbRecord } from "../records/record.js";

export class RemoteRequests {
  constructor(private readonly db: NodeContext) {}

  /**
   * The stored record (for a CRDT key, the whole document) under `finalKey`:
   * the local copy at once when there is one (and a background refresh from
   * peers), else the first verified reply, else what arrived meanwhile.
   */
  async getRecord(finalKey: string, timeoutMs: number, type: "get" | "crdtGet"): Promise<ToolDbRecord | undefined> {
    const db = this.db;
    const local = await db.records.get(finalKey);
    if (db.network.peers.length === 0 || db.isClosed) return local;
    const id = randomId();
    const reply = new Promise<ToolDbRecord | undefined>((resolve) => {
      db.requests.add(
        id,
        timeoutMs,
        (message) => {
          if (message.type !== "put" && message.type !== "crdtPut") return true;
          resolve(message.data as ToolDbRecord);
        },
        () => resolve(undefined),
      );
    });
    db.network.sendToAll({ type, id, key: finalKey });
    if (local) return local;
    return (await reply) ?? (await db.records.get(finalKey).catch(() => undefined));
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
