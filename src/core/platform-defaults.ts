import type { NetworkAdapterConstructor } from "../network/network-adapter.js";
import type { StorageAdapterConstructor } from "../stores/storage-adapter.js";
import type { UserAdapterConstructor } from "../users/user-adapter.js";
import { ErrorCode, ToolDbError } from "./errors.js";

/**
 * The node a client extension is started for: ToolDb. tooldb.ts, which
 * imports this file, merges ToolDb into this interface (declaration
 * merging), so this file needs no import of tooldb.ts and no cycle forms.
 */
export interface ExtendedNode {}

/** Started for every client node (not servers) once its network runs; closed before it. */
export type ClientExtension = (db: ExtendedNode) => { close(): Promise<void> } | undefined;

/**
 * The adapters a ToolDb uses when its options name none. The database core
 * imports no concrete transport, store or user class: the platform entry
 * (`tooldb-dht` in Node, `tooldb-dht/browser` in browsers) fills this in,
 * so a browser bundle never pulls `ws` or LevelDB.
 */
export interface PlatformDefaults {
  networkAdapter: NetworkAdapterConstructor;
  storageAdapter: StorageAdapterConstructor;
  userAdapter: UserAdapterConstructor;
  /** Browsers: the client's server selection (hybrid discovery). */
  clientExtension?: ClientExtension;
}

const registered: Partial<PlatformDefaults> = {};

export function registeredClientExtension(): ClientExtension | undefined {
  return registered.clientExtension;
}

export function setPlatformDefaults(defaults: Partial<PlatformDefaults>): void {
  Object.assign(registered, defaults);
}

/** Options' adapters over the registered ones; a clear error when one is missing. */
export function adaptersFor(options: Partial<PlatformDefaults>): Omit<PlatformDefaults, "clientExtension"> {
  const pick = <K extends keyof PlatformDefaults>(name: K): PlatformDefaults[K] => {
    const adapter = options[name] ?? registered[name];
    if (!adapter) {
      throw new ToolDbError(
        ErrorCode.INVALID_ARGUMENT,
        `no ${name}: pass one in the options, or import ToolDb from "tooldb-dht" (Node) or "tooldb-dht/browser"`,
      );
    }
    return adapter;
  };
  return { networkAdapter: pick("networkAdapter"), storageAdapter: pick("storageAdapter"), userAdapter: pick("userAdapter") };
}
