/**
 * The first step of every record's way in (puts from peers, relays, get
 * replies, catch-up): the cheap checks (shape, formats, the recomputed hash),
 * then a copy whose key and hash are already stored, or already on their way
 * in, is dropped before its signature is checked. A server that hears one
 * write from several servers (relay), or fetches what a push already
 * brought, checks the signature once. The key is part of the identity
 * because a tool-db 2.6.6 record's hash does not cover its key; the hash was
 * recomputed, so a dropped copy carries the very same key, value, author,
 * time and nonce.
 *
 * A dropped copy resolves to what its first copy resolved (or to the stored
 * record). If the first copy is refused (a forged signature sent ahead of
 * the real one), the copies that waited on it are verified on their own,
 * except those with the very same signature: their check would fail the
 * same way (an outside check sent 1,000 identical forged copies in one
 * frame, and each was checked). For the same reason the last REFUSED_COPIES
 * refused signatures are remembered: a copy arriving later is refused
 * unchecked.
 * Entries live only while a record is being verified and merged: the map is
 * bounded by the records in flight, which the network's per-peer limits bound.
 */
import { type RecordVerifier, SIGNATURE_DOES_NOT_VERIFY, type Verdict } from "../records/record-verifier.js";
import type { ToolDbRecord } from "../records/record.js";
import type { ReadAhead } from "./record-store.js";
import { VerifyResult } from "../records/verify-result.js";
import { LruMap } from "../base/bounded-set.js";

/** The outcome of the duplicate check and, for a new record, of its verification. */
export type Checked =
  /** `read`: what the key held when checked, for the merge (release it if no merge follows). */
  | { duplicate: false; verdict: Verdict; read?: ReadAhead }
  /** Dropped before its signature was checked: `winner` is what the store holds, or what the first copy resolved. */
  | { duplicate: true; winner: ToolDbRecord | undefined; verdict: Verdict };

export interface Admission {
  readonly checked: Promise<Checked>;
  /** The record's intake ended with `winner` (undefined: refused); copies waiting on it resolve to it. */
  settle(winner: ToolDbRecord | undefined): void;
  /** The record is let go unmerged (its sender's records are shed): copies waiting on it are checked on their own. */
  abandon(): void;
}

/** A record claimed by a batch (`DuplicateGate.claim`). */
export interface Claim {
  verified(verdict: Verdict): void;
  duplicate(): void;
  settle(winner: ToolDbRecord | undefined): void;
  /** The batch let the record go unchecked (it failed first): copies waiting on it are verified on their own. */
  abandon(): void;
}

const STORED: Verdict = { result: VerifyResult.Verified };
/** The outcome of a claimed record the batch never checked: not Verified, so a waiting copy is checked itself. */
const NOT_CHECKED: Verdict = { result: VerifyResult.InvalidData, reason: "its first copy was not checked" };
const noop = () => undefined;
/** What an admission holds once checked (the key read ahead) is let go. */
const releaseRead = (checked: Promise<Checked>) => checked.then((c) => void (c.duplicate || c.read?.release()), noop);
/** Records (key, hash and signature) whose signature check failed, remembered to refuse identical copies unchecked. */
const REFUSED_COPIES = 4096;

type Outcome = { winner: ToolDbRecord | undefined; verdict: Verdict };

/**
 * A record being verified and merged: one object, whose promise is made only
 * when a copy comes to wait on it (rarely: a catch-up claims a million
 * records, and what each claim holds lives through its batch's checks).
 */
class InFlight implements Claim {
  verdict: Verdict | undefined;
  private ended: Outcome | undefined;
  private waiters: ((outcome: Outcome) => void)[] | undefined;

  constructor(
    private readonly gate: { dropped: number; release(entry: InFlight): void; checked(entry: InFlight, verdict: Verdict): void },
    readonly id: string,
    /** The first copy's signature: a refused one refuses identical copies. */
    readonly s: string,
  ) {}

  /** What the record's intake ended with, once it ended. */
  outcome(): Promise<Outcome> {
    if (this.ended) return Promise.resolve(this.ended);
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  resolve(outcome: Outcome): void {
    if (this.ended) return;
    this.ended = outcome;
    for (const wake of this.waiters ?? []) wake(outcome);
    this.waiters = undefined;
  }

  verified(verdict: Verdict): void {
    this.verdict = verdict;
    this.gate.checked(this, verdict);
  }

  duplicate(): void {
    this.gate.dropped++;
  }

  settle(winner: ToolDbRecord | undefined): void {
    this.gate.release(this);
    this.resolve({ winner, verdict: this.verdict ?? STORED });
  }

  abandon(): void {
    this.gate.release(this);
    this.resolve({ winner: undefined, verdict: NOT_CHECKED });
  }
}

export class DuplicateGate {
  /** Copies dropped before their signature was checked (stored already, or in flight). */
  dropped = 0;
  private readonly inFlight = new Map<string, InFlight>();
  /** `${key}\n${hash}\n${signature}` -> the refusal of its check. */
  private readonly refusedCopies = new LruMap<string, Verdict>(REFUSED_COPIES);

  constructor(
    private readonly readAhead: (key: string) => Promise<ReadAhead>,
    private readonly verifier: Pick<RecordVerifier, "prepare" | "verifySigned" | "verify">,
  ) {}

  /** Records being verified or merged right now. */
  get size(): number {
    return this.inFlight.size;
  }

  /** Starts the checks of `record`: cheap ones now, then the duplicate check, then (if new) its signature. */
  admit(record: unknown): Admission {
    const prepared = this.verifier.prepare(record);
    if (prepared.result !== VerifyResult.Verified) {
      // Refused without a signature check; through `verify` again so that the refusal is observed (metrics).
      return { checked: this.verifier.verify(record).then((verdict) => ({ duplicate: false, verdict })), settle: noop, abandon: noop };
    }
    const r = record as ToolDbRecord;
    const id = `${r.h}\n${r.k}`;
    const refused = this.refusedCopies.get(`${id}\n${r.s}`);
    if (refused) return { checked: Promise.resolve({ duplicate: false, verdict: refused }), settle: noop, abandon: noop };
    const first = this.inFlight.get(id);
    if (first) return { checked: this.afterFirst(first, r, prepared), settle: noop, abandon: noop };
    const entry = new InFlight(this, id, r.s);
    this.inFlight.set(id, entry);
    const afterRead = (read: ReadAhead | undefined): Checked | Promise<Checked> => {
      const stored = read?.record;
      if (stored?.h === r.h) {
        read!.release();
        this.dropped++;
        this.inFlight.delete(id);
        entry.resolve({ winner: stored, verdict: STORED });
        return { duplicate: true, winner: stored, verdict: STORED };
      }
      return this.verifier.verifySigned(r, prepared).then((verdict) => {
        entry.verified(verdict);
        return { duplicate: false, verdict, read };
      });
    };
    // A failed read is no duplicate: the record is verified and its merge reads again.
    const checked = this.readAhead(r.k).then(afterRead, () => afterRead(undefined));
    return { checked, settle: (winner) => entry.settle(winner), abandon: () => void releaseRead(checked).then(() => entry.abandon()) };
  }

  /**
   * Takes `record` (prepared, `Verified`) through the gate without the
   * gate's own read and check: a batch that reads and verifies many records
   * at once (frame-intake.ts) claims them, so copies arriving meanwhile wait
   * on its outcome. Undefined when a copy is in flight already (the caller
   * takes the record the single way, `admit`). `verified` records the
   * signature check's outcome before `settle`; `duplicate` counts a copy
   * found stored.
   */
  claim(record: ToolDbRecord): Claim | undefined {
    const id = `${record.h}\n${record.k}`;
    if (this.inFlight.has(id)) return undefined;
    const entry = new InFlight(this, id, record.s);
    this.inFlight.set(id, entry);
    return entry;
  }

  /** `entry`'s signature was checked: a refusal is remembered for identical copies. */
  checked(entry: InFlight, verdict: Verdict): void {
    // Only a signature checked and found wrong: a check that failed proves nothing.
    if (verdict === SIGNATURE_DOES_NOT_VERIFY) this.refusedCopies.set(`${entry.id}\n${entry.s}`, verdict);
  }

  /** `entry` ended: later copies of its record are checked against the store. */
  release(entry: InFlight): void {
    if (this.inFlight.get(entry.id) === entry) this.inFlight.delete(entry.id);
  }

  /** A copy of a record in flight: its first copy's outcome, unless that copy was refused. */
  private async afterFirst(first: InFlight, record: ToolDbRecord, prepared: Verdict): Promise<Checked> {
    const outcome = await first.outcome();
    if (outcome.verdict.result === VerifyResult.Verified) {
      this.dropped++;
      return { duplicate: true, ...outcome };
    }
    // Same key, hash (recomputed) and signature: the check is the first copy's, refused again.
    if (outcome.verdict !== NOT_CHECKED && record.s === first.s) return { duplicate: false, verdict: outcome.verdict };
    return { duplicate: false, verdict: await this.verifier.verifySigned(record, prepared) };
  }
}
