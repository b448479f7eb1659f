/**
 * A frame of records from a reconciliation run (a fetch answer, a push),
 * taken in as one batch: the plain records whose checks need nothing but
 * the record and what its key holds go through one multi-get, their
 * signature checks all at once, and one write of the records and one of
 * their index entries, holding their keys' locks throughout. Per record
 * this saves the promises, reads and writes of the single path (a catch-up
 * is a million records), which the rest takes as before (record-intake.ts
 * through fetched-merge.ts): CRDT records, keys listed twice in the frame,
 * records with custom verifiers, sign-ups, records near a quota, copies
 * already in flight, and anything the cheap checks refuse.
 *
 * Outcomes are those of the single path: a duplicate (its hash stored) is
 * dropped before its signature is checked, a bad signature is refused with
 * a strike and the records around it are stored, a record that loses to
 * what the key holds is not stored, and events and relays follow each
 * stored record. Unlike a put, a record of a frame that loses to what its
 * key holds is dropped unchecked and unanswered: it would not be stored
 * whatever its signature, and the reconciliation that brought it also
 * brings the winner to its sender (an outside check pushed the same losers
 * frame after frame: each was checked again, and each answered with a
 * winner up to 570 times its size). Once the link is gone, the rest of its
 * frame is let go unchecked (a run fetches it again). Copies of a batch's records arriving meanwhile (a relay,
 * a client's put) wait on it through the duplicate gate.
 */
import type { PeerSession } from "../network/peer-session.js";
import { type ToolDbRecord, incomingWins } from "../records/record.js";
import { isRecordShape, type Verdict } from "../records/record-verifier.js";
import { VerifyResult } from "../records/verify-result.js";
import type { Claim } from "./duplicate-gate.js";
import type { NodeContext } from "./node-context.js";
import type { RecordIntake } from "./record-intake.js";
import type { BatchWrite, MergeOutcome } from "./record-store.js";
import { mergeFetched } from "./sync/fetched-merge.js";

/**
 * Records of a frame taken in together at most: enough to keep every
 * verifying thread busy; a whole frame (a thousand records) at once held
 * more of them alive, and the 1,000,000-record catch-up's new server
 * peaked at 303 MiB RSS (aim < 300).
 */
const BATCH_RECORDS = 256;

interface Batched {
  readonly record: ToolDbRecord;
  readonly prepared: Verdict;
  readonly claim: Claim;
}

export class FrameIntake {
  /** Records of frames dropped unchecked because they lose to what their keys hold. */
  losersDropped = 0;

  constructor(
    private readonly db: NodeContext,
    private readonly intake: RecordIntake,
  ) {}

  /**
   * Verifies and merges `records` from `from`; `stored` is called for each
   * one accepted (stored, a duplicate, or one that lost to what the key
   * holds). Rejects when the store failed, once every record is done.
   * `spread` false: records stored are not passed on to other servers
   * (RecordIntake.merged), as a store copy's are not.
   */
  async accept(records: readonly unknown[], from: PeerSession, stored: () => void, spread = true): Promise<void> {
    const { batch, single } = this.sort(records, from);
    const done = await Promise.allSettled([
      this.acceptInTurn(batch, from, stored, spread),
      mergeFetched(single, {
        // Once the link is gone its records are not checked (a run fetches them again); those admitted are finished.
        admit: (r) => (from.connection.closed ? undefined : this.intake.admit(r)),
        accept: (r, admission) => (admission === undefined && from.connection.closed ? Promise.resolve(undefined) : this.intake.accept(r, from, [], undefined, admission, spread)),
        stored,
      }),
    ]);
    for (const outcome of done) if (outcome.status === "rejected") throw outcome.reason;
  }

  /** Which records the batch takes (claimed in the duplicate gate) and which go one by one. */
  private sort(records: readonly unknown[], from: PeerSession): { batch: Batched[]; single: unknown[] } {
    const { verifier, customVerifiers, quota } = this.db;
    const perKey = new Map<string, number>();
    for (const r of records) if (isRecordShape(r)) perKey.set(r.k, (perKey.get(r.k) ?? 0) + 1);
    const single: unknown[] = [];
    const candidates: { record: ToolDbRecord; prepared: Verdict }[] = [];
    for (const r of records) {
      const prepared = isRecordShape(r) && r.c === null && perKey.get(r.k) === 1 ? verifier.prepare(r) : undefined;
      const plain = prepared?.result === VerifyResult.Verified && !customVerifiers.applies((r as ToolDbRecord).k) && !quota.checksSignUp(r as ToolDbRecord);
      if (plain) candidates.push({ record: r as ToolDbRecord, prepared: prepared! });
      else single.push(r);
    }
    const batch: Batched[] = [];
    const passes = quota.passesEach(candidates.map((c) => c.record));
    candidates.forEach((c, i) => {
      const claim = passes[i] ? this.intake.gate.claim(c.record) : undefined;
      if (claim) batch.push({ record: c.record, prepared: c.prepared, claim });
      else single.push(c.record);
    });
    if (single.length > 0) this.db.log("frame from %s: %d records batched, %d one by one", from.clientId, batch.length, single.length);
    return { batch, single };
  }

  /** The batch BATCH_RECORDS at a time; after a failure the rest are let go unstored (their claims settled). */
  private async acceptInTurn(batch: readonly Batched[], from: PeerSession, stored: () => void, spread: boolean): Promise<void> {
    let failure: { err: unknown } | undefined;
    for (let i = 0; i < batch.length; i += BATCH_RECORDS) {
      const part = batch.slice(i, i + BATCH_RECORDS);
      // Never tried: copies waiting on them are checked on their own.
      if (failure || from.connection.closed) for (const b of part) b.claim.abandon();
      else await this.acceptBatch(part, from, stored, spread).catch((err: unknown) => (failure = { err }));
    }
    if (failure) throw failure.err;
  }

  private async acceptBatch(batch: readonly Batched[], from: PeerSession, stored: () => void, spread: boolean): Promise<void> {
    if (batch.length === 0) return;
    const winners: (ToolDbRecord | undefined)[] = new Array(batch.length);
    const checked: boolean[] = new Array(batch.length).fill(false);
    // What follows a record's merge (quotas, events, relay) failing for one record fails that record alone, as on the single path.
    let failure: { err: unknown } | undefined;
    const after = (i: number, outcome: () => ToolDbRecord | undefined) => {
      try {
        winners[i] = outcome();
      } catch (err) {
        failure ??= { err };
      }
    };
    try {
      const keys = batch.map((b) => b.record.k);
      await this.db.records.lockKeys(keys, async () => {
        const { records: held, foreign } = await this.db.records.readLocked(keys);
        const toCheck: number[] = [];
        batch.forEach((b, i) => {
          const previous = held[i];
          if (previous === undefined || (previous.h !== b.record.h && incomingWins(previous, b.record))) return toCheck.push(i);
          if (previous.h === b.record.h) b.claim.duplicate();
          else this.losersDropped++;
          checked[i] = true;
          winners[i] = previous;
        });
        const verdicts = await Promise.all(toCheck.map((i) => this.db.verifier.verifySigned(batch[i]!.record, batch[i]!.prepared)));
        const writes: BatchWrite[] = [];
        const written: number[] = [];
        toCheck.forEach((i, j) => {
          const { record, claim } = batch[i]!;
          const verdict = verdicts[j]!;
          const previous = held[i];
          claim.verified(verdict);
          checked[i] = true;
          // Every record checked wins over what its key held (the key is locked: it still does).
          if (verdict.result !== VerifyResult.Verified) after(i, () => void this.intake.refuseUnverified(record, verdict, from));
          else {
            const displaced = foreign?.get(i);
            writes.push(displaced === undefined ? { record, previous } : { record, previous, foreign: displaced });
            written.push(i);
          }
        });
        const results = await this.db.records.writeMany(writes);
        results.forEach(({ refused, json }, j) => {
          const { record, previous } = writes[j]!;
          const outcome: MergeOutcome = refused === undefined ? { changed: true, winner: record, previous, json } : { changed: false, winner: previous ?? record, previous, refused };
          after(written[j]!, () => this.intake.merged(record, outcome, from, [], undefined, spread));
        });
      });
    } finally {
      batch.forEach((b, i) => {
        // A record the batch never checked (a read failed before): copies waiting on it are checked on their own.
        if (!checked[i]) b.claim.abandon();
        else b.claim.settle(winners[i]);
        if (winners[i] !== undefined) stored();
      });
    }
    if (failure) throw failure.err;
  }
}
