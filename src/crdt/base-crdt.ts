import { ErrorCode, ToolDbError } from "../base/errors.js";
import { canonicalJson, compareStrings } from "./canonical.js";
import { CRDT_LIMITS } from "./limits.js";

export const CRDT_MAP = "MAP";
export const CRDT_LIST = "LIST";
export const CRDT_COUNTER = "COUNTER";

/**
 * tool-db's CRDT base class, made deterministic: the document is the SET of
 * its changes (a change's identity is its canonical JSON), and its value a
 * pure function of that set, computed over the changes in a total order
 * (`compare`, ties broken by identity). Merging is set union, so replicas
 * that saw the same changes, in any order and any grouping, show the same
 * value. Plugins override `type`, `accepts`, `compare` and `compute` (or, as
 * in tool-db, `mergeChanges`, `getChanges` and `value` outright).
 */
export class BaseCrdt<C = any, V = any> {
  type = "";
  protected readonly changes = new Map<string, C>();
  private cachedValue: V | undefined;
  private cachedSorted: C[] | undefined;

  constructor(
    protected readonly author = "",
    changes?: C[],
  ) {
    if (changes) this.mergeChanges(changes);
  }

  /** Adds the changes not seen yet (malformed ones are skipped). Throws past CRDT_LIMITS.maxChanges. */
  mergeChanges(newChanges: C[]): void {
    if (!Array.isArray(newChanges)) return;
    for (const raw of newChanges) {
      if (!this.accepts(raw)) continue;
      const change = this.normalize(raw);
      const id = this.identity(change);
      if (this.changes.has(id)) continue;
      if (this.changes.size >= CRDT_LIMITS.maxChanges) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `a CRDT document holds at most ${CRDT_LIMITS.maxChanges} changes`);
      }
      this.changes.set(id, change);
      this.invalidate();
    }
  }

  /** Every change, in the document's total order. */
  getChanges(): C[] {
    if (!this.cachedSorted) {
      this.cachedSorted = [...this.changes.entries()]
        .sort(([ia, a], [ib, b]) => this.compare(a, b) || compareStrings(ia, ib))
        .map(([, c]) => c);
    }
    return this.cachedSorted;
  }

  get value(): V {
    this.cachedValue ??= this.compute(this.getChanges());
    return this.cachedValue;
  }

  /** Number of distinct changes. */
  get size(): number {
    return this.changes.size;
  }

  /** Adds a change made here, as receivers will parse it (JSON). Throws when it is not a valid change. */
  protected addOwn(change: C): void {
    const json = JSON.stringify(change);
    const parsed: unknown = json === undefined ? undefined : JSON.parse(json);
    if (!this.accepts(parsed)) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `not a valid ${this.type} change: ${json?.slice(0, 200)}`);
    this.mergeChanges([parsed]);
  }

  protected invalidate(): void {
    this.cachedValue = undefined;
    this.cachedSorted = undefined;
  }

  /** Is this a well-formed change of this type? */
  protected accepts(change: unknown): change is C {
    return typeof change === "object" && change !== null && !Array.isArray(change);
  }

  /** The change with only its type's fields (so that `identity` sees all of it). */
  protected normalize(change: C): C {
    return change;
  }

  /** A change's identity: equal exactly for equal (normalised) changes (default: canonical JSON). */
  protected identity(change: C): string {
    return canonicalJson(change);
  }

  /** Order of application; 0 for "no preference" (identity breaks the tie). */
  protected compare(_a: C, _b: C): number {
    return 0;
  }

  /** The value of the changes, given in order. */
  protected compute(_sorted: C[]): V {
    return undefined as V;
  }
}
