/**
 * Which records a peer earns link merit (`PeerSession.servedAt`, kept by
 * slot-rotation.ts) by delivering again. A record this node did not hold
 * when it asked always earns it (a newer version: get-replies.ts). One it
 * held earned nothing before, since any peer can echo a record the node
 * holds (its own writes, what it answered a get with): so a client that
 * re-reads keys whose latest version it holds (an app reading its config,
 * profiles) gave an honest server no merit, and fakes holding slots
 * looked the same as the server that answered its reads.
 *
 * A held record earns merit when this node knows no peer got it from here:
 * it is in a bounded set of records that peers delivered as asked (a reply
 * to a read, an update of a key subscribed to or listened to) while new
 * here, and it leaves the set the moment this node sends it to any peer (a
 * get or a subscribe answered, a behind sender answered). The set is
 * node-wide, so fake A asking for X and fake B echoing X earns B nothing.
 *
 * It is an allow-list, not a list of what was handed out, so it fails
 * closed: a record it forgot (past `capacity`, or this node's own writes,
 * which never enter it) earns nothing, as before. A list of records handed
 * out failed open: a peer that asked for more records than it holds, or
 * asked in an earlier run, could echo the first ones once they were
 * forgotten.
 *
 * It survives a restart that went through close(): close() saves it to the
 * node's key store once the last link is closed (nothing can be handed out
 * after that), and the next start takes it (reads it, deletes it and makes
 * the delete durable) before any link is made. (It was empty after every
 * restart: a client restarted on a persisted store that re-reads keys it
 * holds, stable data with nothing newer arriving, gave its honest server no
 * merit in the new run, which took its turn with fakes again.) A run that ends without
 * close() (a crash, a kill) saves nothing, and the list taken at its start
 * is gone: the next run starts empty (fail closed), never with a list from
 * before hand-outs it does not know of. A server takes (deletes) a list a
 * client left in the same store and keeps none. Bounded: at most `capacity`
 * hashes saved, the most recent; a saved list that is not one is ignored.
 *
 * Only clients keep it: servers send every record on (relay, catch-up) and
 * their slots do not rotate on it; their merit stays the rule for records
 * not held, at no cost on their paths. The residual risks are in
 * docs/security.md ("Slots and merit").
 */
import { LruMap } from "../base/bounded-set.js";
import { errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";

/** Records remembered: between this and 2 × this in the map's two generations (a hash is some 150 bytes held). */
export const MERIT_RECORDS = 2048;

/** The key of the list saved at close in the node's key store (`<storageName>.keys`), beside the node keys. */
export const MERIT_RECORDS_KEY = "%merit-records%";

/** A record hash (sha256, hex). */
const HASH = /^[0-9a-f]{64}$/;

export class MeritRecords {
  /** Hashes delivered as asked and new here, never sent to a peer since. */
  private readonly fresh: LruMap<string, true>;

  private loaded = false;

  /** Whether `load` ran: a node closed before it (a start-up cut short) leaves the saved list for the next run. */
  get taken(): boolean {
    return this.loaded;
  }

  constructor(capacity = MERIT_RECORDS) {
    this.fresh = new LruMap(capacity);
  }

  /** A peer delivered the record `h` as asked, and it was new here (it earned merit as such). */
  delivered(h: string): void {
    this.fresh.set(h, true);
  }

  /** This node sent the record `h` to a peer: any peer may hold it now. */
  handedOut(h: string): void {
    this.fresh.delete(h);
  }

  /** Whether a peer delivering `h`, which this node held when it asked, earns merit. */
  proves(h: string): boolean {
    return this.fresh.get(h) === true;
  }

  /**
   * Takes the list a previous run saved at close: deleted from `store` (and
   * flushed) before it is used, so a run that ends without close() leaves
   * none behind. `keep` false (a server): only deleted. A store that fails
   * here leaves the list empty (fail closed); the failure goes to `log` (the
   * node's debug logger), if given.
   */
  async load(store: ToolDbStorageAdapter, keep: boolean, log?: LogFn): Promise<void> {
    this.loaded = true;
    try {
      const saved = await store.get(MERIT_RECORDS_KEY);
      if (saved === undefined) return;
      await store.del(MERIT_RECORDS_KEY);
      await store.flush();
      if (keep) for (const h of savedHashes(saved, this.fresh.capacity)) this.fresh.set(h, true);
    } catch (err) {
      this.fresh.clear();
      log?.(`merit records not taken at start (this run starts with none): ${errorText(err)}`);
    }
  }

  /**
   * Saves the list (its `capacity` most recent hashes) to `store`, or deletes
   * a saved one when it is empty. Call it once nothing can be handed out any
   * more (every link closed). Resolves false when the store failed: this
   * run's list is lost (the next starts empty), unless the delete at this
   * run's start failed too and left the older list there (docs/security.md).
   * The failure goes to `log` (the node's debug logger), if given.
   */
  async save(store: ToolDbStorageAdapter, log?: LogFn): Promise<boolean> {
    try {
      if (this.fresh.size === 0) await store.del(MERIT_RECORDS_KEY);
      else await store.put(MERIT_RECORDS_KEY, JSON.stringify([...this.fresh.keys()].slice(-this.fresh.capacity)));
      return true;
    } catch (err) {
      log?.(`merit records not saved at close (the next run starts with none): ${errorText(err)}`);
      return false;
    }
  }

  /** Hashes remembered (at most 2 × capacity). */
  get size(): number {
    return this.fresh.size;
  }
}

/** The hashes of a saved list, at most `max` (the last ones); none when it is not a list of hashes. */
function savedHashes(saved: string, max: number): string[] {
  let list: unknown;
  try {
    list = JSON.parse(saved);
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.filter((h): h is string => typeof h === "string" && HASH.test(h)).slice(-max);
}
