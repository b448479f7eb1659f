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

/**
 * Loads keys and saved state, then listens and dials; `attach` starts a
 * client's registered extension. Every step is raced against close()
 * (Closing.unlessClosed): a step that never ends (a store that never becomes
 * ready, a key read or a listen that hangs) does not hold close(); start-up
 * ends there with CLOSED, the step left to settle on its own unheard (what a
 * late listen opens, the transport closes once it ends: start-release.ts).
 */
export async function startNode({ node, keyStore, nodeKeys, closing }: LifecycleParts, attach: () => void): Promise<void> {
  const { options, log } = node;
  const steps: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
    ["waiting for the stores", () => Promise.all([node.store.ready, keyStore.ready, node.sync.open()])],
    ["loading the quotas", () => node.quota.load()],
    ["loading the peer keys", () => nodeKeys.loadPeer(node.peerAccount, PEER_KEYS, `tooldb-dht peer keys ${options.storageName}`)],
    ["loading the user keys", () => nodeKeys.load(node.userAccount, USER_KEYS, rememberUserFor(options))],
    // the list saved at close, taken before any link (merit-records.ts)
    ["loading the merit list", () => node.merit.load(keyStore, !options.server, log)],
    ["loading the outbox", async () => (options.server ? undefined : node.outbox.load())],
    ["starting the network", () => node.network.start()],
  ];
  for (const [what, run] of steps) {
    checkOpen(node);
    await closing.unlessClosed(run(), what);
  }
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
  // The outbox's last slot writes (a write kept for a trusted server, a slot freed) reach the key store
  // before it closes; a stalled disk holds this at most CLOSE_WRITES_MS, as it holds the puts above
  // (only the outbox's writes: a put still held past the drain above is not waited for again).
  await closing.within(node.outbox.settled());
  // No link is left to hand a record out; a failure is logged. The save is submitted before the key
  // store closes, and its close waits for it (at most CLOSE_ENGINE_MS: a stalled disk does not hold close()).
  const meritSaved = node.merit.taken ? node.merit.save(keyStore, node.log) : undefined;
  await Promise.all([meritSaved, node.store.close(), keyStore.close(), node.sync.close()]);
  nodeKeys.close();
}
