import { setPlatformDefaults } from "../core/platform-defaults.js";
import { WebSocketNetwork } from "../network/websocket-network.js";
import { MemoryStore } from "../stores/memory-store.js";
import { EcdsaUser } from "../users/ecdsa-user.js";

/** Node's defaults: the `ws` transport (listens and dials), an in-memory store, ECDSA users. */
setPlatformDefaults({ networkAdapter: WebSocketNetwork, storageAdapter: MemoryStore, userAdapter: EcdsaUser });

/** ToolDb with Node's defaults registered (import it from here, not from core, in Node-only code). */
export { ToolDb } from "../core/tooldb.js";
