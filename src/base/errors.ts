/**
 * Typed errors with stable codes. Callers switch on `code`, never on message text.
 */
export const ErrorCode = {
  /** A record failed one of the verification rules (see VerifyResult). */
  RECORD_REFUSED: "RECORD_REFUSED",
  /** An app's custom verificator (addCustomVerification) refused a record. */
  CUSTOM_VERIFICATION_FAILED: "CUSTOM_VERIFICATION_FAILED",
  /** A wire frame could not be parsed or failed schema validation. */
  BAD_MESSAGE: "BAD_MESSAGE",
  /** A frame exceeded the configured size limit. */
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  /** The remote peer record was invalid (signature, topic, freshness, identity). */
  BAD_PEER: "BAD_PEER",
  /** The remote node announces a different topic. */
  TOPIC_MISMATCH: "TOPIC_MISMATCH",
  /** The handshake did not complete in time. */
  HANDSHAKE_TIMEOUT: "HANDSHAKE_TIMEOUT",
  /** An operation needs a signed-in user. */
  NOT_SIGNED_IN: "NOT_SIGNED_IN",
  /** Keys may not contain dots (the dot separates a namespace from its key). */
  INVALID_KEY: "INVALID_KEY",
  /** Account decryption failed: wrong password or damaged export. */
  WRONG_PASSWORD: "WRONG_PASSWORD",
  /** Sign-up refused because the user name already exists. */
  USER_EXISTS: "USER_EXISTS",
  /** Sign-in could not find the user record. */
  USER_NOT_FOUND: "USER_NOT_FOUND",
  /** AES-GCM decryption failed: another key, or the ciphertext or IV was changed. */
  DECRYPTION_FAILED: "DECRYPTION_FAILED",
  /** The node, store or adapter was already closed. */
  CLOSED: "CLOSED",
  /** An argument was malformed. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** A storage backend failed: could not open, or refused a write (disk full, I/O error). The server's fault, never the writer's. */
  STORAGE_FAILED: "STORAGE_FAILED",
  /** A store's files are damaged: it refuses to open rather than lose data (repair: `tooldb-dht serve --repair`). */
  STORAGE_DAMAGED: "STORAGE_DAMAGED",
  /** A network operation failed. */
  NETWORK_FAILED: "NETWORK_FAILED",
  /** An acknowledged put was not confirmed by enough servers in time (it stays in the outbox and is retried). */
  ACK_TIMEOUT: "ACK_TIMEOUT",
  /** A server refused an acknowledged put (the reason says which rule). */
  PUT_REFUSED: "PUT_REFUSED",
  /** An incoming link was refused: too many links in total, still in handshake, or from one IP. */
  CONNECTION_LIMIT: "CONNECTION_LIMIT",
  /** A peer sent faster than its message rate and its queue overflowed. */
  RATE_LIMITED: "RATE_LIMITED",
  /** A store quota (total keys, anonymous keys, keys per author) refused a new key. */
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  /** A subscription was refused: the peer's or the server's cap is reached. */
  SUBSCRIPTION_LIMIT: "SUBSCRIPTION_LIMIT",
  /** The peer's identity or IP is banned for breaking the protocol repeatedly. */
  BANNED: "BANNED",
  /** A reconciliation request was refused: the peer is not a proven server, is over its sync budget, or repeats itself. */
  SYNC_REFUSED: "SYNC_REFUSED",
  /** A reconciliation run with a peer ended early (the link closed, the peer refused or stalled); the next run goes on. */
  SYNC_FAILED: "SYNC_FAILED",
  /** A link was dropped: the server's budget for queued outgoing data is used up and this link held the most unread; or, on a client, the link sent more frames than it may have waiting (network/client-intake.ts). */
  MEMORY_LIMIT: "MEMORY_LIMIT",
  /** A new account record (`==user`, a sign-up) was refused: too little proof of work, or its sender is over its sign-up quota. */
  SIGN_UP_LIMIT: "SIGN_UP_LIMIT",
  /** A client dropped a linked server that left its acknowledged puts or queries unanswered too long (close code 4012). */
  UNRESPONSIVE: "UNRESPONSIVE",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ToolDbError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "ToolDbError";
    this.code = code;
    this.details = details;
  }
}

export function isToolDbError(err: unknown, code?: ErrorCode): err is ToolDbError {
  return err instanceof ToolDbError && (code === undefined || err.code === code);
}

/** Best-effort text of anything thrown, for logs and refusal reasons. */
export function errorText(err: unknown): string {
  // Node's connect errors over several addresses are AggregateErrors with an empty message.
  if (err instanceof AggregateError && !err.message) return [...new Set(err.errors.map(errorText))].join("; ") || err.name;
  if (err instanceof Error) return err.message || String((err as { code?: unknown }).code ?? err.name);
  return String(err);
}

/** What an argument is, for messages: "a number", "null", "an array", "the string \"x\"". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return `${typeof value} ${String(value)}`;
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? "an" : "a"} ${type}`;
}
