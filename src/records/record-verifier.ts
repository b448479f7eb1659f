import { isWellFormedAddress } from "../crypto/ecdsa.js";
import {
  boundRecordHash,
  legacyRecordHash,
  namespaceOwner,
  type ToolDbRecord,
} from "./record.js";
import { VerifyResult } from "./verify-result.js";
import { isHex, isLowerHex, isWellFormedText } from "../base/text-formats.js";

export const MAX_FUTURE_MS = 30_000;
export const MAX_KEY_LENGTH = 1024;

export interface RecordVerifierOptions {
  /** Required leading zero hex digits of `h`; 0 disables proof of work. */
  pow: number;
  /** Also accept tool-db 2.6.6 records whose hash does not cover the key. */
  acceptLegacyRecords: boolean;
  /** Checks `s` over `h` for address `a` (the user adapter's verifySignature). */
  verifySignature: (m: { h: string; a: string; s: string }) => Promise<boolean>;
  now: () => number;
  /** Why a CRDT record's value (`c` set) is unacceptable, or undefined; without it CRDT records are refused. */
  checkCrdt?: (c: string, v: unknown) => string | undefined;
}

export interface Verdict {
  result: VerifyResult;
  /** True when the hash covers the key (tooldb-dht format). */
  keyBound?: boolean;
  reason?: string;
}

/** Shape check: every field present with the right type and size. */
export function isRecordShape(value: unknown): value is ToolDbRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.k === "string" &&
    r.k.length > 0 &&
    r.k.length <= MAX_KEY_LENGTH &&
    typeof r.a === "string" &&
    typeof r.n === "number" &&
    Number.isSafeInteger(r.n) &&
    r.n >= 0 &&
    typeof r.t === "number" &&
    Number.isSafeInteger(r.t) &&
    r.t >= 0 &&
    typeof r.h === "string" &&
    typeof r.s === "string" &&
    "v" in r &&
    r.v !== undefined &&
    (r.c === null || typeof r.c === "string")
  );
}

/** What `prepare` passes (shared: a frame's records each hold one while their signatures wait). */
const PREPARED_KEY_BOUND: Verdict = Object.freeze({ result: VerifyResult.Verified, keyBound: true });
const PREPARED_LEGACY: Verdict = Object.freeze({ result: VerifyResult.Verified, keyBound: false });

/**
 * Verifies a record wherever it enters (local put, put from a peer, get
 * reply, subscription push, sync). Unlike tool-db 2.6.6 the hash is always
 * recomputed, so neither `v` nor `t` can be changed under a valid signature.
 * Store-dependent rules (`==` first writer, last-writer-wins) are applied by
 * the caller on merge.
 */
/** The verdict on a signature that was checked and is wrong (the same object every time: see DuplicateGate). */
export const SIGNATURE_DOES_NOT_VERIFY: Verdict = Object.freeze({ result: VerifyResult.InvalidSignature, reason: "signature does not verify" });

export class RecordVerifier {
  /** Called after each verification with its duration (metrics set it). */
  observer: ((seconds: number, verdict: Verdict) => void) | undefined;

  constructor(private readonly opts: RecordVerifierOptions) {}

  verify(value: unknown): Promise<Verdict> {
    const prepared = this.prepare(value);
    return prepared.result === VerifyResult.Verified ? this.verifySigned(value as ToolDbRecord, prepared) : this.observed(Promise.resolve(prepared));
  }

  /**
   * Everything but the signature, synchronously: shape, formats, timestamp,
   * namespace, the recomputed hash, proof of work. `Verified` here means only
   * the signature is left to check (`verifySigned`); callers can drop a
   * duplicate in between, before the one costly step.
   */
  prepare(value: unknown): Verdict {
    if (!isRecordShape(value)) return refuse(VerifyResult.InvalidData, "record fields missing or of the wrong type");
    const r = value;
    // Stores keep keys as UTF-8, where a lone surrogate becomes U+FFFD: such a key would take another key's slot.
    if (!isWellFormedText(r.k)) return refuse(VerifyResult.IllFormedKey, "key is not well-formed UTF-16 (it holds a lone surrogate)");
    if (r.c !== null) {
      if (!this.opts.checkCrdt) return refuse(VerifyResult.Unsupported, `CRDT records (${r.c}) are not supported`);
      const problem = this.opts.checkCrdt(r.c, r.v);
      if (problem) return refuse(VerifyResult.InvalidData, problem);
    }
    if (!isWellFormedAddress(r.a)) return refuse(VerifyResult.InvalidData, "author is not a P-256 address");
    if (!isLowerHex(r.h, 64) || !isHex(r.s, 128)) return refuse(VerifyResult.InvalidData, "malformed hash or signature");
    if (r.t > this.opts.now() + MAX_FUTURE_MS) return refuse(VerifyResult.InvalidTimestamp, "timestamp too far in the future");
    const owner = namespaceOwner(r.k);
    if (owner !== undefined && owner !== r.a) return refuse(VerifyResult.AddressMismatch, "namespace belongs to another address");

    let keyBound: boolean;
    let hashInputOk: boolean;
    try {
      keyBound = boundRecordHash(r.k, r.v, r.a, r.t, r.n) === r.h;
      hashInputOk = keyBound || (this.opts.acceptLegacyRecords && legacyRecordHash(r.v, r.a, r.t, r.n) === r.h);
    } catch {
      return refuse(VerifyResult.InvalidData, "value cannot be serialised");
    }
    if (!hashInputOk) {
      const legacy = !this.opts.acceptLegacyRecords && safeLegacyMatch(r);
      return legacy
        ? refuse(VerifyResult.KeyNotBound, "hash does not cover the key (tool-db 2.6.6 record; enable the legacyRecords option)")
        : refuse(VerifyResult.InvalidHashNonce, "hash does not match the record");
    }
    const pow = this.opts.pow;
    if (pow > 0 && !r.h.startsWith("0".repeat(pow))) return refuse(VerifyResult.NoProofOfWork, `needs ${pow} leading zeros`);
    return keyBound ? PREPARED_KEY_BOUND : PREPARED_LEGACY;
  }

  /** The signature of a record that `prepare` passed; resolves the final verdict (never rejects). */
  verifySigned(record: ToolDbRecord, prepared: Verdict): Promise<Verdict> {
    let valid: Promise<boolean>;
    try {
      valid = this.opts.verifySignature({ h: record.h, a: record.a, s: record.s });
    } catch (err) {
      valid = Promise.reject(err);
    }
    // A check that failed (a verifying thread gone, a WebCrypto error) refuses too, but is no proof of forgery.
    const signed = valid.then(
      (valid): Verdict => (valid ? prepared : SIGNATURE_DOES_NOT_VERIFY),
      (): Verdict => refuse(VerifyResult.InvalidSignature, "signature check failed"),
    );
    return this.observed(signed);
  }

  private observed(verdict: Promise<Verdict>): Promise<Verdict> {
    const observer = this.observer;
    if (!observer) return verdict;
    const start = performance.now();
    return verdict.then((v) => {
      observer((performance.now() - start) / 1000, v);
      return v;
    });
  }
}

function safeLegacyMatch(r: ToolDbRecord): boolean {
  try {
    return legacyRecordHash(r.v, r.a, r.t, r.n) === r.h;
  } catch {
    return false;
  }
}

function refuse(result: VerifyResult, reason: string): Verdict {
  return { result, reason };
}
