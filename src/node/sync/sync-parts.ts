/**
 * What RangeSync's helpers (RecordTransfer, StoreCopy) share: the node, its
 * sync index, the peers' budgets, the requests in flight and the reader of
 * stored records. One object, made once by RangeSync.
 */
import type { NodeContext } from "../node-context.js";
import type { StoredRecords } from "./stored-records.js";
import type { SyncGate } from "./sync-gate.js";
import type { SyncIndex } from "./sync-index.js";
import type { SyncRequests } from "./sync-requests.js";

export interface SyncParts {
  readonly db: NodeContext;
  readonly index: SyncIndex;
  readonly gate: SyncGate;
  readonly requests: SyncRequests;
  readonly stored: StoredRecords;
}
