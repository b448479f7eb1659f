import { LruMap } from "../base/bounded-set.js";
import { PeerKeyed } from "../base/peer-keyed.js";
import type { Limits } from "../limits/limits.js";
import { type ToolDbRecord, isFirstWriterKey, namespaceOwner } from "../records/record.js";
import type { PeerSession } from "../network/peer-session.js";
import type { MergeOutcome, RecordStore } from "./record-store.js";
import { RefusedSignUps } from "./refused-sign-ups.js";
import { SignUpQuota } from "./sign-up-quota.js";
import { itemId } from "./sync/sync-index.js";

type QuotaLimits = Pick<Limits, "maxStoreKeys" | "anonymousKeyShare" | "maxKeysPerAuthor" | "signUpPow" | "maxSignUpsPerIdentity" | "maxSignUpsPerIp" | "maxServerSignUpsPerIp" | "signUpWindow" | "exemptIps">;

/**
 * Sign-ups refused by a quota that refills whose ids are remembered with their count, per proven server's address (the
 * latest, of all its links together): as many as a peer's sign-up retries hold (MAX_RETRY_IDS, sync/sign-up-retries.ts);
 * a run that met more holds its checkpoint. Held range runs ask `refusedFrom` instead, which remembers many more (refused-sign-ups.ts).
 */
const DEFERRED_IDS = 256;
/** Authors whose namespace size is remembered (the rest are counted again on demand). */
const AUTHORS_CACHED = 10_000;

/**
 * Store quotas of a server. Only new keys from peers are checked; updates of
 * a key already stored always pass (their size is bounded by the frame
 * limit), and the node's own writes are never refused.
 *
 * - Owned keys (`:<address>.…` namespaces, `==user` accounts) are accepted
 *   until the store holds `maxStoreKeys` keys, and at most
 *   `maxKeysPerAuthor` per namespace.
 * - Anonymous keys (any other key: anyone with a fresh key pair can write
 *   one) are refused first, once the store holds
 *   `anonymousKeyShare × maxStoreKeys` keys; so a flood of anonymous data
 *   cannot lock out the users who own their data.
 *
 * - New account records (`==user`, sign-ups) from peers also pay a proof of
 *   work and have quotas per sending identity and address, larger ones for
 *   proven servers relaying them (SignUpQuota).
 *
 * Counts are taken from the store at start and kept up to date as keys are
 * added; concurrent merges may overshoot a cap by the number in flight.
 */
export class StoreQuota {
  private keys = 0;
  private readonly authors = new LruMap<string, number>(AUTHORS_CACHED);
  private readonly signUps: SignUpQuota | undefined;
  /**
   * Per peer: its sign-ups refused by a quota that refills (`count`), and for a proven server the item ids of the latest
   * with the count then. By the peer's address, every link of a proven server together (base/peer-keyed.ts): a sync
   * run reads them, and a sign-up refused on the peer's other link (the same record on its way in there is not
   * verified twice) let the run move its checkpoint past it.
   */
  private readonly deferred = new PeerKeyed<{ count: number; ids?: LruMap<string, number> }>(() => ({ count: 0 }));
  /** The same sign-ups, of all proven servers together, by address, for range runs held by the quota (many more, bounded for the server). */
  private readonly refused = new RefusedSignUps();

  constructor(
    private readonly limits: QuotaLimits,
    private readonly records: RecordStore,
    /** Only servers refuse; every node counts (the count is the store-size metric). */
    readonly enforce: boolean,
    now: () => number = Date.now,
  ) {
    this.signUps = enforce ? new SignUpQuota(limits, now, (from) => from.provenServer) : undefined;
  }

  /** Keys in the store (at most maxStoreKeys + 1 are counted at start). */
  get size(): number {
    return this.keys;
  }

  /** Counted by streaming the store (bounded memory: a query would hold every key at once). */
  async load(): Promise<void> {
    let keys = 0;
    for await (const _ of this.records.backend.range({ limit: this.limits.maxStoreKeys + 1 })) keys++;
    this.keys = keys;
  }

  /**
   * True when a record from a peer may be stored, known without a read (far
   * below every cap, or an author whose count is cached): `check` is then
   * not needed. Each put from a peer asks, so it stays synchronous.
   */
  passes(record: ToolDbRecord): boolean {
    if (!this.enforce) return true;
    const owner = namespaceOwner(record.k);
    if (this.keys >= this.capFor(owner, record.k)) return false;
    if (owner === undefined) return true;
    const known = this.authors.get(owner);
    return known !== undefined && known < this.limits.maxKeysPerAuthor;
  }

  /**
   * `passes` for records merged together (a fetched frame): each is counted
   * as a new key of its author before the next is asked, so one batch does
   * not overshoot a cap by itself (batches and merges in flight together
   * may, as the class comment says). Those that do not pass take `check`
   * one by one.
   */
  passesEach(records: readonly ToolDbRecord[]): boolean[] {
    if (!this.enforce) return records.map(() => true);
    const inBatch = new Map<string, number>();
    let added = 0;
    return records.map((record) => {
      const owner = namespaceOwner(record.k);
      if (this.keys + added >= this.capFor(owner, record.k)) return false;
      if (owner !== undefined) {
        const known = this.authors.get(owner);
        const more = inBatch.get(owner) ?? 0;
        if (known === undefined || known + more >= this.limits.maxKeysPerAuthor) return false;
        inBatch.set(owner, more + 1);
      }
      added++;
      return true;
    });
  }

  /** Null when a record from a peer may be stored, else why not. */
  async check(record: ToolDbRecord): Promise<string | null> {
    if (!this.enforce) return null;
    const owner = namespaceOwner(record.k);
    const anonymous = owner === undefined && !isFirstWriterKey(record.k);
    const cap = this.capFor(owner, record.k);
    const authorKeys = owner === undefined ? 0 : await this.authorKeys(owner);
    const authorFull = owner !== undefined && authorKeys >= this.limits.maxKeysPerAuthor;
    if (this.keys < cap && !authorFull) return null;
    if (await this.records.get(record.k)) return null; // an update, not a new key
    if (authorFull) return `namespace of ${owner!.slice(0, 16)}… holds its maximum of ${this.limits.maxKeysPerAuthor} keys`;
    return anonymous
      ? `store holds ${this.keys} keys: new anonymous keys are refused past ${cap} (owned keys still fit)`
      : `store holds its maximum of ${this.limits.maxStoreKeys} keys`;
  }

  /** Keys the store may hold before a new key like this one is refused (anonymous keys get a share). */
  private capFor(owner: string | undefined, key: string): number {
    const anonymous = owner === undefined && !isFirstWriterKey(key);
    return anonymous ? Math.floor(this.limits.maxStoreKeys * this.limits.anonymousKeyShare) : this.limits.maxStoreKeys;
  }

  /** False when `signUpRefusal` has nothing to check (no quotas here, or no account record). */
  checksSignUp(record: ToolDbRecord): boolean {
    return this.signUps !== undefined && isFirstWriterKey(record.k);
  }

  /**
   * Null when a record from `from` may be stored as far as sign-ups go (it is
   * no new `==user` key, or one within the quotas: then charged now, before
   * its merge, so sign-ups merged at once cannot overdraw a quota), else why not.
   */
  async signUpRefusal(record: ToolDbRecord, from: PeerSession): Promise<string | null> {
    if (!this.signUps || !isFirstWriterKey(record.k)) return null;
    if (await this.records.get(record.k)) return null; // an existing account: not a sign-up
    const problem = this.signUps.check(record, from);
    if (problem === null) this.signUps.charge(from);
    else if (this.signUps.refills(problem)) {
      const id = from.provenServer ? itemId(record) : undefined;
      for (const peer of this.deferred.each(from)) {
        const count = ++peer.count;
        if (id !== undefined) (peer.ids ??= new LruMap(DEFERRED_IDS)).set(id, count);
      }
      if (id !== undefined) this.refused.add(from.address, id);
    }
    return problem;
  }

  /** Whether the sign-up with item id `id` from `from` was refused by a quota that refills after `signUpsDeferred` was `since`. */
  deferredSince(from: PeerSession, id: string, since: number): boolean {
    return (this.deferred.of(from).ids?.get(id) ?? 0) > since;
  }

  /** Whether the sign-up with item id `id` from `from`'s peer (a proven server, any link) was refused by a quota that refills (of the latest 32,768 or more refused from any peer). */
  refusedFrom(from: PeerSession, id: string): boolean {
    return from.provenServer && this.refused.has(from.address, id);
  }

  /**
   * Sign-ups from `from`'s peer (every link of a proven server) refused by a quota that refills: a sync run that met
   * one keeps its checkpoint before them, or their ids as the peer's retries (`deferredSince`, sync/sign-up-retries.ts),
   * to fetch them again. Not those refused by a quota of 0 (it never takes one) nor for their proof of work: refused for
   * good.
   */
  signUpsDeferred(from: PeerSession): number {
    return this.deferred.of(from).count;
  }

  /** Ms until the sign-up quotas of `from` can take `count` sign-ups again (0: now, or no quotas here). */
  signUpRetryMs(from: PeerSession, count: number): number {
    return this.signUps?.retryMs(from, count) ?? 0;
  }

  /** Counts a key the store did not have before. */
  merged(record: ToolDbRecord, outcome: MergeOutcome, _from?: PeerSession): void {
    if (!outcome.changed || outcome.previous) return;
    this.keys++;
    const owner = namespaceOwner(record.k);
    const known = owner === undefined ? undefined : this.authors.get(owner);
    if (known !== undefined) this.authors.set(owner!, known + 1);
  }

  private async authorKeys(owner: string): Promise<number> {
    const known = this.authors.get(owner);
    if (known !== undefined) return known;
    const count = (await this.records.query(`:${owner}.`, this.limits.maxKeysPerAuthor + 1)).length;
    this.authors.set(owner, count);
    return count;
  }
}
