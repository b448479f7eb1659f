import { errorText } from "../base/errors.js";
import { type PeerLink, PeerKeyed } from "../base/peer-keyed.js";
import type { ToolDbRecord } from "./record.js";

/**
 * An app's own rule for records under a key prefix (tool-db's
 * `addCustomVerification`): `msg` is the incoming record, already verified
 * (hash, signature, namespace), `previous` what the store holds for its key.
 * Resolve false (or throw) to refuse it.
 */
export type CustomVerification<T = any> = (msg: ToolDbRecord<T>, previous: ToolDbRecord<T> | undefined) => Promise<boolean> | boolean;

/**
 * How often at most a place of a catch-up (a sync run's place in a peer's
 * change feed or its store copy, a legacy catch-up's gets) is gone over
 * again after a custom verifier refused records fetched there: one whose
 * verdict depends on order (a post needs its user stored) refused a record
 * that came before its dependency. A chain (a post needs its user, who needs
 * an invitation) arriving dependents first stores one more link each time.
 */
export const ORDER_RETRIES = 3;

/**
 * Whether a place is gone over again, `retries` times already: some of its
 * records were refused (`refused`), fewer than the time before
 * (`refusedBefore`: the last retry stored something refused until then), at
 * most ORDER_RETRIES times. Refused as often again, they are taken at the
 * verifier's word: a verifier that always refuses costs one retry and stalls
 * nothing.
 */
export function retriesAgain(retries: number, refused: number, refusedBefore?: number): boolean {
  return refused > 0 && retries < ORDER_RETRIES && (refusedBefore === undefined || refused < refusedBefore);
}

/**
 * Custom verificators by key prefix. Unlike tool-db 2.6.6 they run only
 * after the built-in verification passed (2.6.6 let a verificator's answer
 * replace the signature check), and every matching one must accept.
 */
export class CustomVerifiers {
  /** From 1, as tool-db 2.6.6 numbers them: an app that checks `if (id)` must not see the first as 0. */
  private nextId = 1;
  private readonly byId = new Map<number, { prefix: string; fn: CustomVerification }>();
  /**
   * Records of sync runs' frames refused per sender: a run that saw some refused keeps its place in the peer's feed
   * (change-sync.ts). Per peer address, every link of a proven server together (base/peer-keyed.ts): a refusal on the
   * peer's other link counts for the run too.
   */
  private readonly refusedFrom = new PeerKeyed(() => ({ refused: 0 }));

  /** Counts a refusal of a record `from` sent. */
  countRefusal(from: PeerLink): void {
    for (const state of this.refusedFrom.each(from)) state.refused++;
  }

  /** Records from `from`'s peer refused so far (from any of its links, for a proven server). */
  refusals(from: PeerLink): number {
    return this.refusedFrom.of(from).refused;
  }

  add<T = any>(prefix: string, fn: CustomVerification<T>): number {
    const id = this.nextId++;
    this.byId.set(id, { prefix, fn: fn as CustomVerification });
    return id;
  }

  remove(id: number): void {
    this.byId.delete(id);
  }

  /** True when some verificator applies to `key` (saves the read of `previous` otherwise). */
  applies(key: string): boolean {
    for (const { prefix } of this.byId.values()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /**
   * Undefined when no verificator applies or all accept, else the reason of
   * the first refusal. Reads `previous` from `store` only when one applies.
   */
  async refusal(record: ToolDbRecord, store: { get(key: string): Promise<ToolDbRecord | undefined> }): Promise<string | undefined> {
    if (!this.applies(record.k)) return undefined;
    const previous = await store.get(record.k).catch(() => undefined);
    return this.check(record, previous);
  }

  /** Undefined when every matching verificator accepts, else the reason of the first refusal. */
  async check(record: ToolDbRecord, previous: ToolDbRecord | undefined): Promise<string | undefined> {
    for (const { prefix, fn } of [...this.byId.values()]) {
      if (!record.k.startsWith(prefix)) continue;
      let ok: boolean;
      try {
        ok = (await fn(record, previous)) === true;
      } catch (err) {
        return `custom verification for "${prefix}" threw: ${errorText(err)}`;
      }
      if (!ok) return `custom verification for "${prefix}" refused the record`;
    }
    return undefined;
  }
}
