/**
 * Merging the records of one fetched frame: duplicate checks and
 * verifications start up to ADMIT_AHEAD records ahead of the merges, which
 * follow a bounded number at a time in the order of the frame.
 *
 * Every record admitted is merged, even after a merge failed (storage
 * failed): an admission never merged would stay in the duplicate gate, and a
 * later copy of its record (the next run's fetch, a client's put) would wait
 * on it for ever. After a failure nothing more is admitted; the first error
 * is thrown once the admitted records are done.
 */
import type { Admission } from "../duplicate-gate.js";
import type { ToolDbRecord } from "../../records/record.js";

/** Records of one fetched frame being verified and merged at once. */
const MERGES_IN_FLIGHT = 64;
/**
 * Records of a fetched frame whose checks run ahead of its merges: enough to keep every verifying
 * thread busy, few enough that they die young instead of piling up as promoted garbage.
 */
const ADMIT_AHEAD = 256;

export interface FetchedIntake {
  admit(record: unknown): Admission | undefined;
  /** Resolves the winner, or undefined when the record was refused; rejects when the store failed. */
  accept(record: unknown, admission: Admission | undefined): Promise<ToolDbRecord | undefined>;
  /** A record was accepted (called as each one is, so a run's count is current when it stops). */
  stored(): void;
}

/** Merges `records` in order (see the file's comment). */
export async function mergeFetched(records: readonly unknown[], intake: FetchedIntake): Promise<void> {
  const admissions: Array<Admission | undefined> = [];
  let admitted = 0;
  const admitUpTo = (end: number) => {
    for (const last = Math.min(end, records.length); admitted < last; admitted++) admissions.push(intake.admit(records[admitted]));
  };
  let next = 0;
  let failure: { err: unknown } | undefined;
  const merger = async () => {
    while (next < (failure ? admitted : records.length)) {
      const i = next++;
      admitUpTo(i + ADMIT_AHEAD);
      const admission = admissions[i];
      admissions[i] = undefined;
      try {
        if ((await intake.accept(records[i], admission)) !== undefined) intake.stored();
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MERGES_IN_FLIGHT, records.length) }, merger));
  if (failure) throw failure.err;
}
