/**
 * This node's own writes: sign the record (timestamps strictly increasing per key),
 * run the custom verifiers, merge it here, send it to every peer, and on a
 * client keep it in the outbox until a server confirms it.
 */
import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import type { PutOptions } from "./acks.js";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import type { PutMessage } from "../records/messages.js";
import type { NodeContext } from "./node-context.js";
import type { RecordMessage } from "./node-types.js";
import { randomId } from "../base/random.js";
import type { RecordIntake } from "./record-intake.js";
import { signRecord } from "./record-signer.js";
import { type ToolDbRecord, isFirstWriterKey } from "../records/record.js";
import { LruMap } from "../base/bounded-set.js";

/** Keys whose last timestamp is remembered (an evicted key falls back to its stored record's). */
const ISSUED_KEYS = 4096;

export class LocalWriter {
  /** The last timestamp given to each recently written key (a write of the key in flight is not yet stored). */
  private readonly issued = new LruMap<string, number>(ISSUED_KEYS);

  constructor(
    private readonly db: NodeContext,
    private readonly intake: RecordIntake,
  ) {}

  /** Signs `value` under `key` as `account` (a CRDT change list when `crdtType` is set) and puts it. */
  async put(account: ToolDbUserAdapter, key: string, value: unknown, options: PutOptions = {}, crdtType: string | null = null): Promise<PutMessage> {
    return this.putSigned(await this.sign(account, key, value, crdtType), options);
  }

  /** The record `put` would write, signed with this node's next timestamp for the key. */
  async sign(account: ToolDbUserAdapter, key: string, value: unknown, crdtType: string | null = null): Promise<ToolDbRecord> {
    if (!account.getAddress()) throw new ToolDbError(ErrorCode.NOT_SIGNED_IN, "sign in before you put");
    return signRecord(account, key, value, await this.nextTimestamp(key), this.db.options.pow, this.db.options.legacyRecords, crdtType);
  }

  /** Checks, merges here and sends a record from `sign`. */
  async putSigned(record: ToolDbRecord, options: PutOptions = {}): Promise<PutMessage> {
    const db = this.db;
    const message: PutMessage = { type: record.c === null ? "put" : ("crdtPut" as "put"), id: randomId(), to: [], data: record, ack: true };
    const custom = await db.customVerifiers.refusal(record, db.records);
    if (custom) throw new ToolDbError(ErrorCode.CUSTOM_VERIFICATION_FAILED, custom);
    const outcome = await this.intake.merge(record);
    if (outcome.refused) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, outcome.refused);
    // An older sign-up of the name arrived since the caller looked: this one would be refused everywhere.
    if (!outcome.changed && isFirstWriterKey(record.k) && outcome.winner.h !== record.h) throw new ToolDbError(ErrorCode.USER_EXISTS, "User already exists locally!");
    db.quota.merged(record, outcome);
    if (outcome.changed && !db.isClosed) this.intake.changed(message as RecordMessage, undefined, true);
    const tracked = db.options.server ? undefined : db.outbox.add(record, options.ack);
    const confirmed = db.acks.wait(record.h, options.ack ?? 0, options.timeoutMs);
    // A server's own write goes on the broadcast tree to the servers it carries, as is to everyone else.
    const tree = db.broadcast;
    const sent = db.network.sendToAll(message, (s) => !tree.carries(s));
    if (db.options.server && outcome.changed) tree.relay(record, message.id, undefined, false, true, outcome.json);
    if (sent > 0) db.outbox.sent(record);
    await Promise.all([tracked, confirmed]);
    return message;
  }

  /**
   * Timestamps of this node's writes to a key strictly increase, and a write
   * beats what is stored for the key: two puts of a key in the same
   * millisecond must not be ordered by the hash tie-break. Per key, not
   * across keys: a node writing thousands of keys a second kept every
   * timestamp one above the last, ran ahead of the clock (62 s after 70,000
   * puts in 7.5 s), had its writes refused as from the future and was
   * banned, and outranked later writes of other nodes.
   */
  private async nextTimestamp(key: string): Promise<number> {
    const stored = await this.db.records.get(key);
    const issued = this.issued.get(key);
    const t = Math.max(this.db.now(), issued === undefined ? 0 : issued + 1, stored ? stored.t + 1 : 0);
    this.issued.set(key, t);
    return t;
  }
}
