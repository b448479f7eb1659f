export {
  ToolDb,
  type ToolDbEvents,
  type PeerInfo,
  type ServerFunction,
  type FunctionReturn,
  type RecordMessage,
  type UsernameConflict,
  type LostUsername,
  type PutRefusal,
  type SignUpOptions,
} from "../node/tooldb.js";
export { type ToolDbOptions, DEFAULT_OPTIONS, keyStoreName } from "../node/options.js";
export type { ServerFunctionOptions } from "../node/server-functions.js";
export { CustomVerifiers, type CustomVerification } from "../records/custom-verifiers.js";
export { ToolDbError, ErrorCode, isToolDbError, errorText } from "../base/errors.js";
export { VerifyResult } from "../records/verify-result.js";
export { RecordVerifier, isRecordShape, MAX_FUTURE_MS, type Verdict, type RecordVerifierOptions } from "../records/record-verifier.js";
export {
  type ToolDbRecord,
  boundRecordHash,
  legacyRecordHash,
  incomingWins,
  namespaceOwner,
  isFirstWriterKey,
  userNamespacedKey,
} from "../records/record.js";
export { signRecord } from "../node/record-signer.js";
export { proofOfWork } from "../records/proof-of-work.js";
export { LIMITS, type ToolDbMessage, type PeerRecord, type MessageType } from "../records/messages.js";
export { parseMessage } from "../records/parse-message.js";
export { signPeerRecord, checkPeerRecord, clientIdOf, peerRecordDigest } from "../records/peer-record.js";
export { createLogger, enableLogging, setLogSink, type LogFn } from "../base/logger.js";
export { Backoff, type BackoffOptions } from "../base/backoff.js";
export { type Clock, systemClock, TimerGroup } from "../base/clock.js";
export { BoundedSet, LruMap } from "../base/bounded-set.js";
export { TypedEmitter } from "../base/typed-emitter.js";
export { type Limits, DEFAULT_LIMITS, resolveLimits } from "../limits/limits.js";
export { TokenBucket } from "../limits/rate-limiter.js";
export { StoreQuota } from "../node/quota.js";
export { isDialableWsUrl, checkPublicUrl, recordUrl, urlEndpoint, MAX_PEER_URL_LENGTH } from "../limits/peer-url.js";
export { setPlatformDefaults, type PlatformDefaults, type ClientExtension } from "../node/platform-defaults.js";
