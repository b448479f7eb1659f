import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import type { ToolDbUserAdapter, UserKeys } from "../users/user-adapter.js";
import { errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";

/** Slots of the node's key store (names as tool-db uses them). */
export const PEER_KEYS = "%default-peer%";
export const USER_KEYS = "%default-user%";

/**
 * The node's own key pairs (its peer identity and its current user), kept
 * in a store beside the data. Unencrypted, like an SSH host key: protect the
 * directory instead.
 */
export class NodeKeys {
  constructor(
    private readonly store: ToolDbStorageAdapter,
    private readonly log: LogFn,
  ) {}

  /** Restores the keys saved in `slot`, or saves the fresh ones the adapter made. */
  async load(account: ToolDbUserAdapter, slot: string): Promise<void> {
    await account.ready;
    const saved = await this.store.get(slot);
    if (saved) {
      try {
        const keys = JSON.parse(saved) as UserKeys;
        await account.setUser(keys, keys.name);
        return;
      } catch (err) {
        this.log("stored %s keys unreadable, replacing: %s", slot, errorText(err));
      }
    }
    await this.save(account, slot);
  }

  async save(account: ToolDbUserAdapter, slot: string): Promise<void> {
    const exported = await account.exportKeys();
    await this.store.put(slot, JSON.stringify({ ...exported, name: account.getUsername() }));
  }
}
