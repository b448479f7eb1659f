import { createHash } from "node:crypto";
import { ErrorCode, ToolDbError } from "../base/errors.js";

/** A topic as given to join(): a string, or raw bytes. */
export type Topic = string | Uint8Array;

/**
 * How a topic becomes a 20-byte DHT info hash. `undefined` = sha1 (the
 * default, as discovery-channel), `false` = the topic bytes are the info hash
 * (must be 20 bytes), or a custom function (truncated to 20 bytes).
 */
export type TopicHash = false | ((topic: Uint8Array) => Uint8Array);

export const INFO_HASH_LENGTH = 20;

/** UTF-8 bytes of a string topic; byte topics as is. */
export function topicBytes(topic: Topic): Buffer {
  if (typeof topic === "string") return Buffer.from(topic, "utf8");
  return Buffer.from(topic.buffer, topic.byteOffset, topic.byteLength);
}

/**
 * The info hash a topic is announced under. Matches discovery-channel 5:
 * sha1 of the topic bytes, for string AND byte topics (a 20-byte Buffer is
 * hashed too, not used as is, unless `hash` is false).
 */
export function topicInfoHash(topic: Topic, hash?: TopicHash): Buffer {
  const bytes = topicBytes(topic);
  if (hash === false) {
    if (bytes.length !== INFO_HASH_LENGTH) {
      throw new ToolDbError(
        ErrorCode.INVALID_ARGUMENT,
        `with hash: false a topic must be ${INFO_HASH_LENGTH} bytes, got ${bytes.length}`,
      );
    }
    return Buffer.from(bytes);
  }
  const digest = hash ? Buffer.from(hash(bytes)) : createHash("sha1").update(bytes).digest();
  if (digest.length < INFO_HASH_LENGTH) {
    throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `topic hash must give at least ${INFO_HASH_LENGTH} bytes`);
  }
  // discovery-channel truncates longer hashes so they fit in the DHT
  return digest.subarray(0, INFO_HASH_LENGTH);
}
