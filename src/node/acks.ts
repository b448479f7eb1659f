import type { RefusalEvent } from "../network/network-adapter.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import { type Clock, TimerGroup } from "../base/clock.js";
import { coalesced } from "../base/coalesced.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import type { LogFn } from "../base/logger.js";
import { LIMITS, type PutAckMessage, type PutMessage } from "../records/messages.js";
import type { Outbox } from "./outbox.js";
import { randomId } from "../base/random.js";
import type { Verdict } from "../records/record-verifier.js";
import { type ToolDbRecord, isFirstWriterKey } from "../records/record.js";

/** Options of an acknowledged put (the fourth argument of `putData`). */
export interface PutOptions {
  /** Resolve only once this many servers confirmed they stored the write durably (0 = do not wait). */
  ack?: number;
  /** How long to wait for the confirmations (ms); then the put rejects with ACK_TIMEOUT. */
  timeoutMs?: number;
}

export const DEFAULT_ACK_TIMEOUT_MS = 10_000;

/** A server refused one of this node's puts (`put-refused` event; the `details` of a PUT_REFUSED error). */
export interface PutRefusal {
  /** The record's hash. */
  h: string;
  /** The server's reason, starting with the rule (a VerifyResult, e.g. "CantOverwrite: ..."). */
  reason: string;
  /** The refusing server's client id. */
  peer: string;
}

export interface AckHooks {
  /** Every refusal of this node's puts by a server, awaited or not (so none goes unreported). */
  refused?: (refusal: PutRefusal) => void;
  /** A server confirmed that it stored this node's record `h` (once per confirming server and answer). */
  confirmed?: (h: string, server: string) => void;
  /** A proven server answered puts of this node (stored or refused, for any reason): it is responsive. */
  answered?: (from: PeerSession) => void;
}

/** Refusals remembered until the put's confirmation is sent (a refusal precedes its confirmation by microtasks). */
const MAX_REFUSALS = 1024;
/**
 * Refusals that depend on this server's state, not on the record: not final,
 * the client keeps the write and re-sends it later, here or elsewhere. They
 * are answered (with their code) so the client knows the server is alive: a
 * server that never answers a client's puts is dropped as unresponsive.
 */
const RETRIABLE: ReadonlySet<string> = new Set([ErrorCode.QUOTA_EXCEEDED, ErrorCode.RATE_LIMITED]);

/** Confirmations a server holds per link until its next fsync (beyond, the client's retry covers it). */
const MAX_PENDING_PER_LINK = 8 * LIMITS.maxAcks;

interface Waiter {
  need: number;
  servers: Set<string>;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface PendingAcks {
  stored: string[];
  refused: AckRefusal[];
}

type AckRefusal = NonNullable<PutAckMessage["refused"]>[number];

/**
 * Acknowledged puts, both sides of the wire extension.
 *
 * Client side: `wait(h, n)` resolves once `n` different servers confirmed the
 * record with hash `h` (any proven server counts, trusted or not); every
 * confirmation also counts for the outbox entry, which stays until as many
 * servers as the put asked for confirmed it, one of them a server the client
 * trusts (outbox.ts).
 *
 * Server side: a `put` with `ack: true` is confirmed to its sender with a
 * `putAck` after the record was merged and the store flushed (fsync), so a
 * confirmed write survives a crash of the server. Confirmations of one flush
 * go out batched per link. tool-db 2.6.6 neither sends `ack` nor knows
 * `putAck`; it drops unknown types, so the extension does not disturb it.
 */
export class Acks {
  private readonly waiters = new Map<string, Waiter>();
  private readonly timers: TimerGroup;
  private pending = new Map<PeerSession, PendingAcks>();
  private readonly refusals = new Map<string, RefusalEvent>();
  private readonly flushAndSend = coalesced(() => this.sendBatch());
  private closed = false;

  constructor(
    private readonly outbox: Outbox,
    private readonly store: ToolDbStorageAdapter,
    private readonly log: LogFn,
    private readonly isServer: boolean,
    clock?: Clock,
    private readonly hooks: AckHooks = {},
  ) {
    this.timers = new TimerGroup(clock);
  }

  // ---- client side -------------------------------------------------------

  /** Call before sending the put, so no confirmation can come first. */
  wait(h: string, need: number, timeoutMs = DEFAULT_ACK_TIMEOUT_MS): Promise<void> {
    if (need <= 0) return Promise.resolve();
    // A put that reached here once the node began to close: no timer left behind, no ACK_TIMEOUT long after.
    if (this.closed) return Promise.reject(new ToolDbError(ErrorCode.CLOSED, "the node closed before the put was confirmed"));
    return new Promise<void>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.waiters.delete(h);
        const got = waiter.servers.size;
        const still = " (a client keeps it in its outbox until enough servers confirmed it)";
        reject(new ToolDbError(ErrorCode.ACK_TIMEOUT, `put confirmed by ${got} of ${need} servers within ${timeoutMs} ms${still}`));
      }, timeoutMs);
      const settle = (fn: () => void) => () => {
        this.timers.clearTimeout(timer);
        this.waiters.delete(h);
        fn();
      };
      const waiter: Waiter = {
        need,
        servers: new Set(),
        resolve: settle(resolve),
        reject: (err) => settle(() => reject(err))(),
      };
      this.waiters.set(h, waiter);
    });
  }

  /**
   * A server's confirmations count once per server (its address), however
   * many links or answers it sends, and only from a server whose identity
   * was proven on this link: a peer that only says it is a server, or
   * replays another's handshake, confirms nothing.
   */
  onPutAck(message: PutAckMessage, from: PeerSession): void {
    if (!from.provenServer) return;
    this.hooks.answered?.(from);
    this.outbox.confirmed(message.stored, from);
    for (const h of message.stored) {
      this.hooks.confirmed?.(h, from.clientId);
      const waiter = this.waiters.get(h);
      if (!waiter) continue;
      waiter.servers.add(from.address);
      if (waiter.servers.size >= waiter.need) waiter.resolve();
    }
    for (const { h, reason, code } of message.refused ?? []) {
      // The put fails; the outbox keeps the write on a backoff of its own (another server may take it).
      this.outbox.refused(h, from);
      // Not final (this server's quota or rate): the put waits on for other servers, and nothing is reported.
      if (code !== undefined && RETRIABLE.has(code)) continue;
      if (code === ErrorCode.STORAGE_FAILED) {
        // The server's own storage failed, not the record: said with its own code.
        this.waiters.get(h)?.reject(new ToolDbError(ErrorCode.STORAGE_FAILED, `server ${from.clientId} could not store the put: ${reason}`));
        continue;
      }
      const refusal: PutRefusal = { h, reason, peer: from.clientId };
      this.waiters.get(h)?.reject(new ToolDbError(ErrorCode.PUT_REFUSED, `server ${from.clientId} refused the put: ${reason}`, refusal));
      this.hooks.refused?.(refusal);
    }
  }

  // ---- server side -------------------------------------------------------

  /** Remembers why a peer's record was refused, for its confirmation. */
  noteRefusal(event: RefusalEvent): void {
    if (!this.isServer || event.peer === undefined || event.key === undefined) return;
    this.refusals.set(`${event.peer}\n${event.key}`, event);
    if (this.refusals.size > MAX_REFUSALS) this.refusals.delete(this.refusals.keys().next().value as string);
  }

  /**
   * Confirms an acknowledged put once its outcome is durable. `winner` is
   * what the store holds now (undefined: refused). A refusal that depends on
   * this server's state (quota, rate) is not answered: the client re-sends.
   */
  async confirm(message: PutMessage, from: PeerSession, verdict: Promise<Verdict>, winner: ToolDbRecord | undefined): Promise<void> {
    if (!this.isServer || message.ack !== true) return;
    const record = message.data as Partial<ToolDbRecord>;
    if (typeof record.h !== "string") return;
    let refusal: string | undefined;
    if (!winner) {
      const id = `${from.clientId}\n${typeof record.k === "string" ? record.k.slice(0, 128) : ""}`;
      const event = this.refusals.get(id);
      this.refusals.delete(id);
      if (event && RETRIABLE.has(event.code)) {
        // Answered as not final: the client keeps the write (and knows this server is alive).
        await this.queue(from, { refused: { h: record.h.slice(0, 128), reason: event.reason.slice(0, 512), code: event.code } });
        return;
      }
      const v = event ? undefined : await verdict.catch(() => undefined);
      refusal = event?.reason ?? (v ? `${v.result}${v.reason ? `: ${v.reason}` : ""}` : "refused");
    } else if (winner.h !== record.h && typeof record.k === "string" && isFirstWriterKey(record.k)) {
      refusal = "CantOverwrite: an older sign-up holds the name";
    }
    // A write that lost to a newer record still counts as stored: what the server holds supersedes it.
    await this.queue(from, refusal === undefined ? { stored: record.h } : { refused: { h: record.h.slice(0, 128), reason: refusal.slice(0, 512) } });
  }

  /**
   * A put with `ack` that this server could not store because its own
   * storage failed (disk full, I/O error): refused with code STORAGE_FAILED,
   * which tells the writer to keep it and try again, and blames nobody.
   */
  async storageFailed(message: PutMessage, from: PeerSession, err: ToolDbError): Promise<void> {
    const h = (message.data as Partial<ToolDbRecord>).h;
    if (!this.isServer || message.ack !== true || typeof h !== "string") return;
    await this.queue(from, { refused: { h: h.slice(0, 128), reason: err.message.slice(0, 512), code: ErrorCode.STORAGE_FAILED } });
  }

  private async queue(from: PeerSession, ack: { stored: string } | { refused: AckRefusal }): Promise<void> {
    let acks = this.pending.get(from);
    if (!acks) this.pending.set(from, (acks = { stored: [], refused: [] }));
    if (acks.stored.length + acks.refused.length >= MAX_PENDING_PER_LINK) return;
    if ("stored" in ack) acks.stored.push(ack.stored);
    else acks.refused.push(ack.refused);
    await this.flushAndSend();
  }

  private async sendBatch(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    let durable = true;
    if ([...batch.values()].some((a) => a.stored.length > 0)) {
      await this.store.flush().catch((err) => {
        durable = false;
        this.log("could not flush before confirming puts: %s", errorText(err));
      });
    }
    for (const [session, acks] of batch) {
      if (session.connection.closed) continue;
      const stored = durable ? acks.stored : [];
      for (let i = 0; i < Math.max(stored.length, acks.refused.length); i += LIMITS.maxAcks) {
        const refused = acks.refused.slice(i, i + LIMITS.maxAcks);
        session.send({ type: "putAck", id: randomId(), stored: stored.slice(i, i + LIMITS.maxAcks), ...(refused.length > 0 ? { refused } : {}) });
      }
    }
  }

  close(): void {
    this.closed = true;
    this.timers.clearAll();
    for (const waiter of [...this.waiters.values()]) waiter.reject(new ToolDbError(ErrorCode.CLOSED, "the node closed before the put was confirmed"));
    this.pending.clear();
    this.refusals.clear();
  }
}
