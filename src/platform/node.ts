import { setPlatformDefaults } from "../node/platform-defaults.js";
import { combineNetworks } from "../network/composite-network.js";
import { WebSocketNetwork } from "../network/websocket-network.js";
import { MemoryStore } from "../stores/memory-store.js";
import { EcdsaUser } from "../users/ecdsa-user.js";

/** Node's defaults: the `ws` transport (listens and dials), an in-memory store, ECDSA users. */
setPlatformDefaults({ networkAdapter: WebSocketNetwork, storageAdapter: MemoryStore, userAdapter: EcdsaUser, combineNetworks });

/** ToolDb with Node's defaults registered (import it from here, not from core, in Node-only code). */
export { ToolDb } from "../node/tooldb.js";
