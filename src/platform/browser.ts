import { setPlatformDefaults } from "../core/platform-defaults.js";
import { BrowserWebSocketNetwork } from "../network/browser-websocket-network.js";
import { IndexedDbStore } from "../stores/indexeddb-store.js";
import { EcdsaUser } from "../users/ecdsa-user.js";
import { ServerSelection } from "../hybrid/server-selection.js";

/**
 * Browser defaults: the native WebSocket transport (dial only), IndexedDB
 * (data, node keys and the account survive reloads), ECDSA users on
 * WebCrypto, and a server selection for every client (hybrid discovery:
 * `serverSelection.links` servers from `peers`, the peer cache and gossip).
 */
setPlatformDefaults({
  networkAdapter: BrowserWebSocketNetwork,
  storageAdapter: IndexedDbStore,
  userAdapter: EcdsaUser,
  clientExtension: (db) => (db.options.serverSelection === false ? undefined : new ServerSelection(db, db.options.serverSelection)),
});

export { ToolDb } from "../core/tooldb.js";
