import { setPlatformDefaults } from "../core/platform-defaults.js";
import { BrowserWebSocketNetwork } from "../network/browser-websocket-network.js";
import { IndexedDbStore } from "../stores/indexeddb-store.js";
import { EcdsaUser } from "../users/ecdsa-user.js";

/**
 * Browser defaults: the native WebSocket transport (dial only), IndexedDB
 * (data, node keys and the account survive reloads), ECDSA users on WebCrypto.
 */
setPlatformDefaults({ networkAdapter: BrowserWebSocketNetwork, storageAdapter: IndexedDbStore, userAdapter: EcdsaUser });

export { ToolDb } from "../core/tooldb.js";
