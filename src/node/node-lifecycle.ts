/**
 * A node's start-up and close sequences, split from tooldb.ts: the order
 * its parts open in (stores, quotas, keys, saved merit and outbox, then the
 * network) and the order they stop in. ToolDb keeps the state (`ready`,
 * closed) and calls these; the parts it keeps private are handed in.
 */
import { ErrorCode, ToolDbError } from "../base/errors.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import type { Closing } from "./closing.js";
import type { NodeContext } from "./node-context.js";
import { type NodeKeys, PEER_KEYS, USER_KEYS } from "./node-keys.js";
import { rememberUserFor } from "./platform-defaults.js";
import type { ServerSync } from "./server-sync.js";

/** What starts and stops with the node: its context and the parts ToolDb keeps private. */
export interface LifecycleParts {
  readonly node: NodeContext & { readonly peerAccount: ToolDbUserAdapter; readonly sync: Pick<ServerSync, "open" | "close"> };
  readonly keyStore: ToolDbStorageAdapter;
  readonly nodeKeys: NodeKeys;
  /** Writes begun before close() and the close hooks of what wraps the node. */
  readonly closing: Closing;
}

/** Loads keys and saved state, then listens and dials; `attach` starts a client's registered extension. */
export async function startNode({ node, keyStore, nodeKeys, closing }: LifecycleParts, attach: () => void): Promise<void> {
  const { options, log } = node;
  // close() does not wait for stores that never become ready (their open hangs): start-up ends there with CLOSED.
  await closing.unlessClosed(Promise.all([node.store.ready, keyStore.ready, node.sync.open()]), "waiting for the stores");
  await node.quota.load();
  await nodeKeys.loadPeer(node.peerAccount, PEER_KEYS, `tooldb-dht peer keys ${options.storageName}`);
  await nodeKeys.load(node.userAccount, USER_KEYS, rememberUserFor(options));
  await node.merit.load(keyStore, !options.server, log); // the list saved at close, taken before any link (merit-records.ts)
  if (!options.server) await node.outbox.load();
  checkOpen(node);
  await node.network.start();
  checkOpen(node); // closed while it began to listen: no dials, no extension, no "ready"
  for (const peer of options.peers) node.network.connectTo(peer.host, peer.port);
  if (!options.server) attach();
  node.emit("ready");
  node.emit("init", node.userAccount.getAddress());
}

function checkOpen(node: NodeContext): void {
  if (node.isClosed) throw new ToolDbError(ErrorCode.CLOSED, "close() came before the node was ready");
}

/** Stops every part, once start-up ended (`extension`: a client's, started by `attach`). */
export async function closeNode({ node, keyStore, nodeKeys, closing }: LifecycleParts, extension: { close(): Promise<void> } | undefined): Promise<void> {
  await closing.runHooks(); // what wraps the node (a DHTServer's discovery) stops first
  node.acks.close(); // puts waiting for confirmations reject with CLOSED (a client's outbox keeps the write)
  node.requests.clear(); // waits for replies end now (CLOSED): a signIn's lookup does not hold the drain
  await closing.drain(); // puts called before close() finish their local write
  node.requests.clear(); // and any request added meanwhile
  node.keyListeners.clear();
  node.remoteSubscriptions.clear();
  node.outbox.close();
  node.serverWatch.close();
  node.broadcast.close();
  node.functions.close();
  node.reasks.close();
  await extension?.close();
  await node.network.close();
  if (node.merit.taken) await node.merit.save(keyStore, node.log); // no link is left to hand a record out; a failure is logged
  await Promise.all([node.store.close(), keyStore.close(), node.sync.close()]);
  nodeKeys.close();
}
