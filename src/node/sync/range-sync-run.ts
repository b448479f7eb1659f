/** What one range sync run did, as `RangeSync` reports it (its `done` event, `run()`). */
export interface RangeSyncRun {
  peer: string;
  /** False when the link dropped, the peer refused, a limit ended the run early or its checkpoints could not be settled. */
  complete: boolean;
  /**
   * "changes": by the change feeds since the checkpoints; "range": full range
   * reconciliation (also after a copy that stopped before the end of the
   * peer's store: refused, pages that brought nothing new, `maxRounds`);
   * "copy": a copy of the peer's store that went to its end (store-copy.ts),
   * begun on an empty store (the checkpoints set without ranges) or resumed
   * at a cursor (`resumed`: range reconciliation follows in the same run).
   */
  mode: "changes" | "range" | "copy";
  rounds: number;
  /** Records pushed to the peer / fetched from it. */
  pushed: number;
  fetched: number;
  /** Records new here that a store copy brought in this run (relayed to no server we reconcile with: server-sync.ts). */
  copied?: number;
  /** The run's store copy began at a cursor (copy-cursors.ts): where a copy cut short stopped, in this run of the server or before a restart. */
  resumed?: boolean;
  /** Bytes of reconciliation messages sent / received (excluding records). */
  rangeBytesOut: number;
  rangeBytesIn: number;
  /** Bytes of record frames pushed (fetched ones are counted by the peer). */
  recordBytesOut: number;
  /** Range runs: the most index items one message of ours read, as the link allowed (link-read-budget.ts). */
  readsPerMessage?: number;
  /** Range runs: our work on the peer's answers in index items read (ranges count RANGE_WORK), charged to the peer's sync budget. */
  work?: number;
  /** Range runs: ranges of the frontier a run that stopped short saved that this one began with / this one saved (range-frontier.ts). */
  resumedRanges?: number;
  savedRanges?: number;
  reason?: string;
}

export type RangeSyncEvents = { done: [run: RangeSyncRun] };
