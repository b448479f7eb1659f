/**
 * Which records announced by IHAVE this server holds already. An announcer
 * names each hash's key (`ks`, announcements.ts); the key is looked up in the
 * store, and a hash that is what the key holds is not asked for. Records
 * that anti-entropy brings to one server are held by most of the others, and
 * each of those that no longer remembered one as recently received asked
 * for it: a record came back whole from every server that announced it.
 *
 * A stranger can name keys to make this server read its store, so lookups
 * are bounded per link (CHECKS_PER_WINDOW a second, fewer than the gets the
 * message rate allows); past the bound a hash is treated as unheld, and asked
 * for as before. A key that lies (not the hash's) only makes its own
 * announcement worthless: a hash counts as held only when this store holds a
 * record with that very hash under the key.
 */
import type { PeerSession } from "../../network/peer-session.js";

/** Store lookups one link's announcements may cause per window. */
const CHECKS_PER_WINDOW = 1024;
const WINDOW_MS = 1000;

export interface HeldCheckDeps {
  /** The record stored under a key (its hash is all that is read). */
  readonly records: { get(key: string): Promise<{ readonly h: string } | undefined> };
  now(): number;
}

interface Budget {
  since: number;
  used: number;
}

export class HeldCheck {
  private readonly budgets = new WeakMap<PeerSession, Budget>();

  constructor(private readonly deps: HeldCheckDeps) {}

  /**
   * Of `hashes` announced by `from` with their `keys` (by position; null: not
   * named), those neither `received` lately nor held in the store.
   */
  async unheld(from: PeerSession, hashes: readonly string[], keys: readonly (string | null)[] | undefined, received: (hash: string) => boolean): Promise<string[]> {
    const budget = this.budget(from);
    const held = await Promise.all(
      hashes.map((hash, i) => {
        if (received(hash)) return true;
        const key = keys?.[i];
        if (key === null || key === undefined || budget.used >= CHECKS_PER_WINDOW) return false;
        budget.used++;
        return this.deps.records.get(key).then(
          (record) => record?.h === hash,
          () => false, // the store failing: asked for, as without a key
        );
      }),
    );
    return hashes.filter((_, i) => !held[i]);
  }

  private budget(from: PeerSession): Budget {
    const now = this.deps.now();
    let budget = this.budgets.get(from);
    if (!budget || now - budget.since >= WINDOW_MS) this.budgets.set(from, (budget = { since: now, used: 0 }));
    return budget;
  }
}
