import { setPlatformDefaults } from "../node/platform-defaults.js";
import { combineNetworks } from "../network/composite-network.js";
import { BrowserWebSocketNetwork } from "../network/browser-websocket-network.js";
import { IndexedDbStore } from "../stores/indexeddb-store.js";
import { EcdsaUser } from "../users/ecdsa-user.js";
import { ServerSelection } from "../peering/server-selection.js";
import type { ToolDb } from "../node/tooldb.js";

/**
 * Browser defaults: the native WebSocket transport (dial only), IndexedDB
 * (data, node keys and the account survive reloads), ECDSA users on
 * WebCrypto, and a server selection for every client (hybrid discovery:
 * `serverSelection.links` servers from `peers`, the peer cache and gossip).
 */
setPlatformDefaults<ToolDb>({
  networkAdapter: BrowserWebSocketNetwork,
  combineNetworks,
  storageAdapter: IndexedDbStore,
  userAdapter: EcdsaUser,
  // A page reload is not a new session: the signed-in user stays signed in.
  rememberUser: true,
  clientExtension: (db) => (db.options.serverSelection === false ? undefined : new ServerSelection(db, db.options.serverSelection)),
});

export { ToolDb } from "../node/tooldb.js";
