import type { NetworkAdapterConstructor } from "../network/network-adapter.js";
import type { StorageAdapterConstructor } from "../stores/storage-adapter.js";
import type { UserAdapterConstructor } from "../users/user-adapter.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";

/**
 * Started for every client node (not servers) once its network runs; closed
 * before it. `Node` is ToolDb: this file can't name it (tooldb.ts imports
 * this file), so the node passes itself and the platform entries, which
 * import both, register functions of ToolDb.
 */
export type ClientExtension<Node = unknown> = (db: Node) => { close(): Promise<void> } | undefined;

/** `networkAdapter: [A, B]`: the classes run as one adapter (CompositeNetwork in both platform entries). */
export type NetworkCombiner = (...adapters: NetworkAdapterConstructor[]) => NetworkAdapterConstructor;

/**
 * The adapters a ToolDb uses when its options name none. The database core
 * imports no concrete transport, store or user class: the platform entry
 * (`tooldb-dht` in Node, `tooldb-dht/browser` in browsers) fills this in,
 * so a browser bundle never pulls `ws` or LevelDB.
 */
export interface PlatformDefaults<Node = unknown> {
  networkAdapter: NetworkAdapterConstructor;
  storageAdapter: StorageAdapterConstructor;
  userAdapter: UserAdapterConstructor;
  /** How a list of network adapters becomes one. */
  combineNetworks?: NetworkCombiner;
  /** Browsers: the client's server selection (hybrid discovery). */
  clientExtension?: ClientExtension<Node>;
  /** The `rememberUser` option's default (false where none is registered). */
  rememberUser?: boolean;
}

// The registry erases the node type: it is set by platform entries and read by the node, both of which know it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const registered: Partial<PlatformDefaults<any>> = {};

export function registeredClientExtension<Node>(): ClientExtension<Node> | undefined {
  return registered.clientExtension;
}

export function setPlatformDefaults<Node>(defaults: Partial<PlatformDefaults<Node>>): void {
  Object.assign(registered, defaults);
}

/** Whether a signed-in user's keys are saved for the next start: the option, else the platform's default, else no. */
export function rememberUserFor(options: { rememberUser?: boolean }): boolean {
  return options.rememberUser ?? registered.rememberUser ?? false;
}

/** The `networkAdapter` option as one class: a list is combined by the registered combiner. */
export function networkAdapterFor(adapter: NetworkAdapterConstructor | readonly NetworkAdapterConstructor[]): NetworkAdapterConstructor {
  if (!Array.isArray(adapter)) return adapter as NetworkAdapterConstructor;
  const list = adapter as readonly NetworkAdapterConstructor[];
  if (list.length === 1) return list[0]!;
  if (!registered.combineNetworks) {
    throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, 'a list of network adapters needs a combiner: import ToolDb from "tooldb-dht" (Node) or "tooldb-dht/browser"');
  }
  return registered.combineNetworks(...list);
}

/** Options' adapters over the registered ones; a clear error when one is missing. */
export function adaptersFor(options: Partial<PlatformDefaults>): Omit<PlatformDefaults, "clientExtension" | "rememberUser"> {
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
