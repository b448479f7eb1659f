/**
 * Which records announced by IHAVE this server holds already. An announcer
 * names each hash's key (`ks`, announcements.ts); the key is looked up in the
 * store, and a hash that is what the key holds is not asked for. Records
 * that anti-entropy brings to one server are held by most of the others, and
 * each of those that no longer remembered one as recently received asked
 * for it: a record came back whole from every server that announced it.
 *
 * A stranger can name keys to make this server read its store, so lookups
 * are bounded per link: each takes a message of the link's rate, as the get
 * it stands for would (an ihave was charged one message however many keys it
 * named, so under a `messageRate` below 1,024 a peer made more lookups than
 * it may send gets); at most CHECKS_PER_WINDOW a second whatever the rate;
 * and CHARS_PER_WINDOW characters of stored records read, as a get's answer
 * is bounded by the link's send budget (one ihave naming a 200 KB record's
 * key 256 times made a server read and parse 51 MB, review). They run WAVE
 * at a time; past any bound a hash is treated as unheld, and asked for as
 * before. A key that lies (not the hash's) only makes its
 * own announcement worthless: a hash counts as held only when this store
 * holds a record with that very hash under the key.
 */
import type { PeerSession } from "../../network/peer-session.js";

/** Store lookups one link's announcements may cause per window, whatever its message rate (each also takes a message of it). */
const CHECKS_PER_WINDOW = 1024;
/** Characters of stored records those lookups may read (and parse) per window. */
const CHARS_PER_WINDOW = 2 * 1024 * 1024;
/** Lookups of one message at once: each is charged once read, so a wave reads past the bound by at most its own records. */
const WAVE = 16;
const WINDOW_MS = 1000;

export interface HeldCheckDeps {
  /** The record stored under a key (its hash is all that is read), unless `wanted` refuses its stored length (then unparsed). */
  readonly records: { getChecked(key: string, wanted: (chars: number) => boolean): Promise<{ readonly h: string } | undefined> };
  now(): number;
}

interface Budget {
  since: number;
  used: number;
  chars: number;
}

export class HeldCheck {
  private readonly budgets = new WeakMap<PeerSession, Budget>();

  constructor(private readonly deps: HeldCheckDeps) {}

  /**
   * Of `hashes` announced by `from` with their `keys` (by position; null: not
   * named), those neither `received` lately nor held in the store.
   */
  async unheld(from: PeerSession, hashes: readonly string[], keys: readonly (string | null)[] | undefined, received: (hash: string) => boolean): Promise<string[]> {
    const held = hashes.map(received);
    const named = keys === undefined ? [] : hashes.flatMap((_, i) => (held[i] || keys[i] === null || keys[i] === undefined ? [] : [i]));
    for (let next = 0; next < named.length; ) {
      const budget = this.budget(from);
      const wave: number[] = [];
      // The link's rate is asked last: a message of it is taken only for a lookup made.
      while (next < named.length && wave.length < WAVE && budget.used < CHECKS_PER_WINDOW && budget.chars < CHARS_PER_WINDOW && (from.link?.spend(1) ?? true)) {
        budget.used++;
        wave.push(named[next++]!);
      }
      if (wave.length === 0) break;
      await Promise.all(
        wave.map((i) =>
          this.deps.records.getChecked(keys![i]!, (chars) => (budget.chars += chars) <= CHARS_PER_WINDOW).then(
            (record) => void (held[i] = record?.h === hashes[i]),
            () => undefined, // the store failing: asked for, as without a key
          ),
        ),
      );
    }
    return hashes.filter((_, i) => !held[i]);
  }

  private budget(from: PeerSession): Budget {
    const now = this.deps.now();
    let budget = this.budgets.get(from);
    if (!budget || now - budget.since >= WINDOW_MS) this.budgets.set(from, (budget = { since: now, used: 0, chars: 0 }));
    return budget;
  }
}
