/**
 * tool-db 2.6.6's events when two sign-ups of one name meet (a `==<user>`
 * record by another address than the stored one): `username-conflict-resolved`
 * on the node where they met, and `current-user-lost-username` there when
 * the signed-in user held the record that lost. The rule that picks the
 * winner is `incomingWins` (records/record.ts); this only reports it.
 */
import type { NodeContext } from "./node-context.js";
import type { MergeOutcome } from "./record-store.js";
import { type ToolDbRecord, isFirstWriterKey } from "../records/record.js";

/** Reports a merge of `incoming` that met another author's sign-up. */
export function reportUsernameConflict(db: NodeContext, incoming: ToolDbRecord, outcome: MergeOutcome): void {
  if (!isFirstWriterKey(incoming.k)) return;
  const local = outcome.changed ? outcome.previous : outcome.winner;
  if (!local || local.a === incoming.a) return;
  const winner = outcome.changed ? "remote" : "local";
  if (winner === "remote" && db.userAccount.getAddress() === local.a) {
    db.emit("current-user-lost-username", { username: incoming.k.slice(2), timestamp: local.t, winnerTimestamp: incoming.t, winnerAddress: incoming.a });
  }
  db.emit("username-conflict-resolved", {
    username: incoming.k,
    winner,
    localTimestamp: local.t,
    remoteTimestamp: incoming.t,
    localAddress: local.a,
    remoteAddress: incoming.a,
  });
}
