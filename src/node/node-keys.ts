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
  /** Lets go of the saved peer identity (see `loadPeer`). */
  private release: (() => void) | undefined;

  constructor(
    private readonly store: ToolDbStorageAdapter,
    private readonly log: LogFn,
  ) {}

  /**
   * The peer identity: the keys saved in `slot`, unless another node on the
   * same store holds them. Browser tabs of one app share their IndexedDB
   * stores, so two tabs loaded one identity and servers closed the second
   * tab's links as duplicates of the first's: it stayed offline, with no
   * event (found by an outside check). Where the Web Locks API exists
   * (browsers), the identity is held under a lock named after the store for
   * the node's life; a node that cannot take it runs under the fresh keys
   * its adapter made, not saved. Elsewhere (Node) a store has one user at a
   * time: LevelDB locks its directory.
   */
  async loadPeer(account: ToolDbUserAdapter, slot: string, lockName: string): Promise<void> {
    const claim = await claimLock(lockName);
    if (claim === false) {
      await account.ready;
      this.log("another node on this store holds its peer identity (another tab?): this one runs under fresh keys");
      return;
    }
    this.release = claim;
    await this.load(account, slot);
  }

  /** Releases the identity's lock, if held. Idempotent. */
  close(): void {
    this.release?.();
    this.release = undefined;
  }

  /**
   * Restores the keys saved in `slot`, or saves the fresh ones the adapter
   * made. Keys saved for a signed-in user are restored only with `sessions`;
   * without, they are replaced by the fresh anonymous ones.
   */
  async load(account: ToolDbUserAdapter, slot: string, sessions = true): Promise<void> {
    await account.ready;
    const saved = await this.store.get(slot);
    if (saved) {
      try {
        const keys = JSON.parse(saved) as UserKeys & { session?: boolean };
        if (keys.session === true && !sessions) {
          this.log("%s held a signed-in user's keys and rememberUser is off: replaced by anonymous keys", slot);
        } else {
          await account.setUser(keys, keys.name);
          return;
        }
      } catch (err) {
        this.log("stored %s keys unreadable, replacing: %s", slot, errorText(err));
      }
    }
    await this.save(account, slot);
  }

  /** Saves `account`'s keys in `slot`; `session`: a signed-in user's (see `load`). */
  async save(account: ToolDbUserAdapter, slot: string, session = false): Promise<void> {
    const exported = await account.exportKeys();
    await this.store.put(slot, JSON.stringify({ ...exported, name: account.getUsername(), ...(session ? { session } : {}) }));
  }
}

interface LockManager {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | undefined): Promise<unknown>;
}

/** Takes the Web Lock `name` until the returned function is called; false when another holder has it; undefined where there are no Web Locks. */
function claimLock(name: string): Promise<(() => void) | false | undefined> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (typeof locks?.request !== "function") return Promise.resolve(undefined);
  return new Promise((resolve) => {
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        return new Promise<void>((release) => resolve(release));
      })
      .catch(() => resolve(undefined)); // a context without locks (e.g. an opaque origin): no claim, as in Node
  });
}
