import type { MergeOutcome, RecordStore } from "./record-store.js";
import { incomingWins, type ToolDbRecord } from "../records/record.js";
import { canonicalJson } from "../crdt/canonical.js";
import { CRDT_LIMITS } from "../crdt/limits.js";

/**
 * A stored CRDT document: the newest signed change list, plus the other
 * signed change lists it has not subsumed (`heads`, a tooldb-dht field that
 * tool-db 2.6.6 ignores). Every change in a document is covered by the
 * signature of a record that is kept, so a document can be re-verified
 * anywhere; 2.6.6 instead stored its merged list under the last writer's
 * signature, which then no longer verifies.
 */
export type CrdtDocument = ToolDbRecord<unknown[]> & { heads?: ToolDbRecord<unknown[]>[] };

/**
 * Merges verified CRDT records (`c` set) into documents, under the same
 * per-key lock as plain records. A record whose changes are all in one head
 * changes nothing; heads whose changes are all in the new record are dropped.
 * Bounded: at most CRDT_LIMITS.maxHeads heads and maxChanges changes.
 */
export class CrdtDocs {
  constructor(private readonly records: RecordStore) {}

  merge(record: ToolDbRecord): Promise<MergeOutcome> {
    const incoming = withoutHeads(record) as ToolDbRecord<unknown[]>;
    return this.records.serialise(record.k, async () => {
      const slot = await this.records.getSlot(record.k);
      const stored = slot.record as CrdtDocument | undefined;
      if (!stored || stored.c === null) {
        // A key holds a plain record or a document: the other kind replaces it only when newer, as in 2.6.6.
        if (stored && !incomingWins(stored, incoming)) return { changed: false, winner: stored, previous: stored };
        const refused = await this.records.write(incoming, stored, slot.foreign);
        if (refused) return { changed: false, winner: stored ?? incoming, previous: stored, refused };
        return { changed: true, winner: incoming, previous: stored };
      }
      const unchanged = (refused?: string): MergeOutcome => ({ changed: false, winner: stored, previous: stored, refused });
      const heads = headsOf(stored);
      if (heads.some((h) => h.h === incoming.h)) return unchanged();
      const incomingIds = changeIds(incoming);
      const headIds = heads.map(changeIds);
      if (headIds.some((ids) => isSubset(incomingIds, ids))) return unchanged();
      const kept = heads.filter((_, j) => !isSubset(headIds[j]!, incomingIds));
      const next = [...kept, incoming];
      if (next.length > CRDT_LIMITS.maxHeads) {
        return unchanged(`CRDT document ${incoming.k.slice(0, 128)} has ${CRDT_LIMITS.maxHeads} concurrent change lists; merge them (getCrdt) and put again`);
      }
      const union = new Set(incomingIds);
      headIds.forEach((ids, j) => kept.includes(heads[j]!) && ids.forEach((id) => union.add(id)));
      if (union.size > CRDT_LIMITS.maxChanges) {
        return unchanged(`CRDT document ${incoming.k.slice(0, 128)} would hold ${union.size} changes, over the limit of ${CRDT_LIMITS.maxChanges}`);
      }
      const doc = toDocument(next);
      // A document too large to send is refused like one with too many heads: merge them (getCrdt) and put again.
      const refused = await this.records.write(doc, stored);
      if (refused) return unchanged(refused);
      return { changed: true, winner: doc, previous: stored };
    });
  }
}

/** The signed change lists of a stored document, each without `heads`. */
export function headsOf(doc: CrdtDocument): ToolDbRecord<unknown[]>[] {
  const others = Array.isArray(doc.heads) ? doc.heads : [];
  return [withoutHeads(doc) as ToolDbRecord<unknown[]>, ...others.slice(0, CRDT_LIMITS.maxHeads - 1)];
}

/**
 * A record that arrives with `heads` is several signed records: each is
 * verified and merged on its own. Undefined for a plain record; at most
 * maxHeads records (the rest is dropped unread).
 */
export function splitHeads(record: unknown): unknown[] | undefined {
  if (typeof record !== "object" || record === null || !("heads" in record)) return undefined;
  const heads = (record as { heads: unknown }).heads;
  return [withoutHeads(record as object), ...(Array.isArray(heads) ? heads.slice(0, CRDT_LIMITS.maxHeads - 1) : [])];
}

function withoutHeads<R extends object>(record: R): R {
  if (!("heads" in record)) return record;
  const { heads: _heads, ...rest } = record as R & { heads?: unknown };
  return rest as R;
}

/** Newest head on top (by time, then hash), the others in `heads` in the same order. */
function toDocument(heads: ToolDbRecord<unknown[]>[]): CrdtDocument {
  const sorted = [...heads].sort((a, b) => b.t - a.t || (a.h < b.h ? 1 : a.h > b.h ? -1 : 0));
  const [top, ...rest] = sorted as [ToolDbRecord<unknown[]>, ...ToolDbRecord<unknown[]>[]];
  return rest.length > 0 ? { ...top, heads: rest } : top;
}

function changeIds(record: ToolDbRecord<unknown[]>): Set<string> {
  return new Set(Array.isArray(record.v) ? record.v.map(canonicalJson) : []);
}

function isSubset(a: Set<string>, b: Set<string>): boolean {
  if (a.size > b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
