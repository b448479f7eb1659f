/**
 * One tool-db 2.6.6 node (npm `tool-db`, @tool-db/ecdsa-user, the test
 * WebSocket adapter and a memory store) for tests outside interop.test.ts.
 * `close()` closes its network (2.6.6's own close() does not) and its stores.
 */
import t from "tool-db";
import u from "@tool-db/ecdsa-user";
import { waitFor, withTimeout } from "../helpers/wait.js";
import { type LegacyToolDb, MemoryToolDbStore, ToolDbWsAdapter } from "./tooldb-ws-adapter.js";

const { ToolDb: LegacyToolDbClass } = t;
const EcdsaUser = u.default;
const WAIT_MS = 5000;
let seq = 0;

export interface LegacyNode {
  db: LegacyToolDb;
  net: ToolDbWsAdapter;
  store: MemoryToolDbStore;
  close(): Promise<void>;
}

/** Resolves once the node is ready and (with `peers`) every peer answered its ping. */
export async function startLegacyNode(topic: string, opts: { server?: boolean; peers?: Array<{ host: string; port: number }> } = {}): Promise<LegacyNode> {
  const peers = opts.peers ?? [];
  const db = new LegacyToolDbClass({
    topic,
    server: opts.server ?? false,
    host: "127.0.0.1",
    port: 0,
    peers,
    networkAdapter: ToolDbWsAdapter,
    storageAdapter: MemoryToolDbStore,
    userAdapter: EcdsaUser,
    storageName: `legacy-${process.pid}-${seq++}`,
    pow: 0,
    maxRetries: 3,
    wait: 50,
  });
  const net = db.network as unknown as ToolDbWsAdapter;
  const sessions = Promise.all(peers.map(() => waitFor(net.events, "session", WAIT_MS, (_id: string, outgoing: boolean) => outgoing)));
  sessions.catch(() => undefined);
  const node: LegacyNode = {
    db,
    net,
    store: db.store as unknown as MemoryToolDbStore,
    close: async () => {
      await net.close();
      await db.close();
    },
  };
  try {
    await withTimeout(db.ready, WAIT_MS, "tool-db 2.6.6 init");
    await withTimeout(net.ready, WAIT_MS, "tool-db 2.6.6 adapter ready");
    await sessions;
  } catch (err) {
    await node.close();
    throw err;
  }
  return node;
}
