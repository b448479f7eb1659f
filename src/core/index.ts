export { ToolDb, type ToolDbEvents, type PeerInfo, type ServerFunction, type FunctionReturn } from "./tooldb.js";
export { type ToolDbOptions, DEFAULT_OPTIONS, keyStoreName } from "./options.js";
export { CustomVerifiers, type CustomVerification } from "./custom-verifiers.js";
export { ToolDbError, ErrorCode, isToolDbError, errorText } from "./errors.js";
export { VerifyResult } from "./verify-result.js";
export { RecordVerifier, isRecordShape, MAX_FUTURE_MS, type Verdict, type RecordVerifierOptions } from "./record-verifier.js";
export {
  type ToolDbRecord,
  boundRecordHash,
  legacyRecordHash,
  incomingWins,
  namespaceOwner,
  isFirstWriterKey,
  userNamespacedKey,
} from "./record.js";
export { signRecord } from "./record-signer.js";
export { proofOfWork } from "./proof-of-work.js";
export { parseMessage, LIMITS, type ToolDbMessage, type PeerRecord, type MessageType } from "./messages.js";
export { signPeerRecord, checkPeerRecord, clientIdOf, peerRecordDigest } from "./peer-record.js";
export { createLogger, enableLogging, setLogSink, type LogFn } from "./logger.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { type Clock, systemClock, TimerGroup } from "./clock.js";
export { BoundedSet, LruMap } from "./bounded-set.js";
export { TypedEmitter } from "./typed-emitter.js";
export { type Limits, DEFAULT_LIMITS, resolveLimits } from "./limits.js";
export { TokenBucket } from "./rate-limiter.js";
export { StoreQuota } from "./quota.js";
export { isDialableWsUrl, checkPublicUrl, recordUrl, urlEndpoint, MAX_PEER_URL_LENGTH } from "./peer-url.js";
export { setPlatformDefaults, type PlatformDefaults, type ClientExtension } from "./platform-defaults.js";
