/** Outcome of record verification; string values match tool-db's VerifyResult where they overlap. */
export const VerifyResult = {
  Verified: "Verified",
  InvalidData: "InvalidData",
  InvalidTimestamp: "InvalidTimestamp",
  AddressMismatch: "AddressMismatch",
  CantOverwrite: "CantOverwrite",
  NoProofOfWork: "NoProofOfWork",
  InvalidHashNonce: "InvalidHashNonce",
  InvalidSignature: "InvalidSignature",
  /** tool-db's catch-all; never produced here (every refusal has its specific result). */
  InvalidVerification: "InvalidVerification",
  /** The hash does not cover the key (tool-db 2.6.6 format) and legacy records are off. */
  KeyNotBound: "KeyNotBound",
  /** An app's custom verificator refused the record (tool-db's name). */
  CustomVerificationFailed: "CustomVerificationFailed",
  /** CRDT records are not supported yet. */
  Unsupported: "Unsupported",
} as const;

export type VerifyResult = (typeof VerifyResult)[keyof typeof VerifyResult];
