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
  /**
   * The key holds a lone surrogate (not well-formed UTF-16): a UTF-8 store
   * would keep it in another key's slot. Refused, never struck: tool-db
   * 2.6.6 and older tooldb-dht servers take and relay such records, so an
   * honest relay (or a 2.6.6 app that cut an emoji in half) sends them.
   */
  IllFormedKey: "IllFormedKey",
  /** An app's custom verificator refused the record (tool-db's name). */
  CustomVerificationFailed: "CustomVerificationFailed",
  /** CRDT records are not supported yet. */
  Unsupported: "Unsupported",
} as const;

export type VerifyResult = (typeof VerifyResult)[keyof typeof VerifyResult];
