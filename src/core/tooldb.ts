import { sha256Hex } from "../crypto/sha256.js";
import { createNetwork } from "../network/composite-network.js";
import type { NetworkHost, RefusalEvent, ToolDbNetworkAdapter, DialFailedEvent } from "../network/network-adapter.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import type { EncryptedAccount, ToolDbUserAdapter, UserKeys } from "../users/user-adapter.js";
import { Acks, type PutOptions } from "./acks.js";
import { BoundedSet } from "./bounded-set.js";
import type { BaseCrdt } from "../crdt/base-crdt.js";
import { crdtRecordProblem } from "../crdt/changes.js";
import { CrdtDocs, headsOf, splitHeads, type CrdtDocument } from "../crdt/crdt-docs.js";
import { CustomVerifiers, type CustomVerification } from "./custom-verifiers.js";
import { ErrorCode, ToolDbError, errorText } from "./errors.js";
import { KeyListeners, type KeyListener } from "./key-listeners.js";
import { resolveLimits } from "./limits.js";
import { StoreQuota } from "./quota.js";
import { createLogger, type LogFn } from "./logger.js";
import type { PeerRecord, PutMessage, ToolDbMessage } from "./messages.js";
import { DEFAULT_OPTIONS, keyStoreName, type ToolDbOptions } from "./options.js";
import { NodeKeys, PEER_KEYS, USER_KEYS } from "./node-keys.js";
import { Outbox } from "./outbox.js";
import { adaptersFor, registeredClientExtension } from "./platform-defaults.js";
import { checkPublicUrl } from "./peer-url.js";
import type { PeerRecordProblem } from "./peer-record.js";
import { PendingRequests } from "./pending-requests.js";
import { Protocol } from "./protocol.js";
import { randomId, randomName } from "./random.js";
import { RecordStore, type MergeOutcome } from "./record-store.js";
import { RecordVerifier, type Verdict } from "./record-verifier.js";
import { signRecord } from "./record-signer.js";
import { type ToolDbRecord, isFirstWriterKey, userNamespacedKey } from "./record.js";
import { ServerDirectory } from "./server-directory.js";
import { ServerSync, type SyncProgress } from "./server-sync.js";
import { RemoteSubscriptions } from "./subscriptions.js";
import { TypedEmitter } from "./typed-emitter.js";
import { VerifyResult } from "./verify-result.js";


export type ToolDbEvents = {
  ready: [];
  connect: [];
  disconnect: [];
  "peer-connect": [info: PeerInfo];
  "peer-disconnect": [info: PeerInfo & { code: number; reason: string }];
  /** A verified record changed this node's store. */
  put: [record: ToolDbRecord, from: string | undefined];
  data: [record: ToolDbRecord];
  /** Something was refused: a record, a frame, a link. Never thrown. */
  refused: [event: RefusalEvent];
  "dial-failed": [event: DialFailedEvent];
  /** Verified server records learned from peers (hybrid discovery). */
  servers: [records: PeerRecord[]];
  /** The outbox was full: the oldest unconfirmed write (to this key) is no longer re-sent. */
  "outbox-overflow": [key: string];
  error: [error: Error];
};

export interface PeerInfo {
  peerId: string;
  address: string;
  isServer: boolean;
  outgoing: boolean;
  host?: string;
  port?: number;
}

export type ServerFunction = (args: any) => Promise<unknown> | unknown;

export interface FunctionReturn {
  code: "OK" | "ERR" | "NOT_FOUND" | string;
  return: unknown;
}

/**
 * A ToolDb node: a signed, offline-first key-value database that keeps
 * ToolDb's API and wire format, and verifies everything it accepts.
 */
export class ToolDb extends TypedEmitter<ToolDbEvents> implements NetworkHost {
  readonly options: ToolDbOptions;
  readonly store: ToolDbStorageAdapter;
  readonly records: RecordStore;
  /** Key counts and store quotas (enforced on servers). */
  readonly quota: StoreQuota;
  readonly crdtDocs: CrdtDocs;
  readonly network: ToolDbNetworkAdapter;
  readonly peerAccount: ToolDbUserAdapter;
  userAccount: ToolDbUserAdapter;
  /** tool-db compatible hooks; the typed events fire as well. */
  onConnect: () => void = () => undefined;
  onDisconnect: () => void = () => undefined;
  onPeerConnect: (peerId: string) => void = () => undefined;
  onPeerDisconnect: (peerId: string) => void = () => undefined;
  isConnected = false;

  readonly log: LogFn;
  readonly verifier: RecordVerifier;
  readonly keyListeners = new KeyListeners();
  readonly remoteSubscriptions: RemoteSubscriptions;
  /** Keys this node subscribed to; re-sent to every new link. */
  readonly localSubscriptions = new Set<string>();
  readonly functions = new Map<string, ServerFunction>();
  readonly customVerifiers = new CustomVerifiers();
  readonly processed: BoundedSet<string>;
  readonly requests: PendingRequests<ToolDbMessage>;
  /** A client's writes no server has confirmed yet (servers rely on server sync instead). */
  readonly outbox: Outbox;
  readonly acks: Acks;
  private readonly keyStore: ToolDbStorageAdapter;
  private readonly nodeKeys: NodeKeys;
  private readonly protocol: Protocol;
  private readonly directory: ServerDirectory;
  readonly sync: ServerSync;
  private readonly readyPromise: Promise<void>;
  private closePromise: Promise<void> | undefined;
  private extension: { close(): Promise<void> } | undefined;
  private closed = false;

  constructor(options: Partial<ToolDbOptions> = {}) {
    super();
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = {
      ...DEFAULT_OPTIONS,
      ...defined,
      ...adaptersFor(defined),
    } as ToolDbOptions;
    this.log = createLogger(`node:${this.options.server ? "server" : "client"}`, this.options.debug);
    this.verifier = new RecordVerifier({
      pow: this.options.pow,
      acceptLegacyRecords: this.options.legacyRecords,
      verifySignature: (m) => this.peerAccount.verifySignature(m),
      now: () => this.now(),
      checkCrdt: crdtRecordProblem,
    });
    this.processed = new BoundedSet(this.options.dedupCapacity);
    this.requests = new PendingRequests(this.options.maxPendingRequests, this.options.clock);
    const limits = resolveLimits(this.options.limits);
    this.remoteSubscriptions = new RemoteSubscriptions(this.options.maxSubscriptionsPerPeer, limits.maxSubscriptions);
    this.store = new this.options.storageAdapter(this, this.options.storageName);
    this.keyStore = new this.options.storageAdapter(this, keyStoreName(this.options.storageName));
    this.records = new RecordStore(this.store);
    this.quota = new StoreQuota(limits, this.records, this.options.server);
    this.crdtDocs = new CrdtDocs(this.records);
    this.peerAccount = new this.options.userAdapter(this);
    this.userAccount = new this.options.userAdapter(this);
    this.network = createNetwork(this.options.networkAdapter, this);
    this.network.on("dial-failed", (e) => this.emit("dial-failed", e));
    this.protocol = new Protocol(this);
    const { outboxCapacity: capacity, outboxRetryInterval: retryInterval, clock } = this.options;
    const overflow = (key: string) => this.emit("outbox-overflow", key);
    this.outbox = new Outbox(this.keyStore, { records: this.records, network: this.network, log: this.log, overflow }, { capacity, retryInterval, clock });
    this.acks = new Acks(this.outbox, this.store, this.log, this.options.server, clock);
    this.on("refused", (event) => this.acks.noteRefusal(event));
    this.nodeKeys = new NodeKeys(this.keyStore, this.log);
    this.sync = new ServerSync(this);
    this.directory = new ServerDirectory({
      signer: this.peerAccount,
      topic: this.options.topic,
      host: this.options.publicHost ?? this.options.host,
      url: this.options.publicUrl === undefined ? undefined : checkPublicUrl(this.options.publicUrl),
      port: () => (this.network as { port?: number }).port || this.options.port,
      isServer: this.options.server,
      now: () => this.now(),
    });
    this.readyPromise = this.init();
    // Failures surface through `ready`; never as an unhandled rejection.
    this.readyPromise.catch((err) => this.log("init failed: %s", errorText(err)));
  }

  // ---- lifecycle -------------------------------------------------------

  /** Resolves once keys are loaded and a server listens. */
  get ready(): Promise<void> {
    return this.readyPromise;
  }

  get topic(): string {
    return this.options.topic;
  }

  get isServer(): boolean {
    return this.options.server;
  }

  private async init(): Promise<void> {
    await Promise.all([this.store.ready, this.keyStore.ready, this.sync.open()]);
    await this.quota.load();
    await this.nodeKeys.load(this.peerAccount, PEER_KEYS);
    await this.nodeKeys.load(this.userAccount, USER_KEYS);
    if (!this.options.server) await this.outbox.load();
    if (this.closed) return;
    await this.network.start();
    for (const peer of this.options.peers) this.network.connectTo(peer.host, peer.port);
    if (!this.options.server) this.extension = registeredClientExtension()?.(this);
    this.emit("ready");
  }

  /** Idempotent. Closes links, timers and stores; no event fires afterwards. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.silence();
    await this.readyPromise.catch(() => undefined);
    this.requests.clear();
    this.keyListeners.clear();
    this.remoteSubscriptions.clear();
    this.outbox.close();
    this.acks.close();
    await this.extension?.close();
    await this.network.close();
    await Promise.all([this.store.close(), this.keyStore.close(), this.sync.close()]);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Server catch-up progress (metrics, status). */
  get syncProgress(): Readonly<SyncProgress> {
    return this.sync.progress;
  }

  now(): number {
    return this.options.clock ? this.options.clock.now() : Date.now();
  }

  // ---- NetworkHost -----------------------------------------------------

  nodeAddress(): string {
    return this.peerAccount.getAddress() ?? "";
  }

  localPeerRecord(): Promise<PeerRecord> {
    return this.directory.ownRecord();
  }

  checkPeerRecord(record: PeerRecord, maxAgeMs?: number): Promise<PeerRecordProblem | null> {
    return this.directory.check(record, maxAgeMs);
  }

  capabilities(): string[] {
    return this.sync.capabilities();
  }

  knownServers(): PeerRecord[] {
    return this.directory.list(this.network.peers);
  }

  learnServers(records: PeerRecord[], from: PeerSession): void {
    void this.directory.learn(records, from, this.nodeAddress()).then(({ learned, problems }) => {
      for (const problem of problems) {
        this.refused({ code: ErrorCode.BAD_PEER, reason: `gossiped server record refused (${problem})`, peer: from.clientId });
      }
      if (learned.length > 0 && !this.closed) this.emit("servers", learned);
    });
  }

  /** tool-db compatible: the server records this node knows. */
  get serverPeers(): PeerRecord[] {
    return this.knownServers();
  }

  handleMessage(message: ToolDbMessage, from: PeerSession): void | Promise<void> {
    return this.protocol.handle(message, from);
  }

  sessionOpened(session: PeerSession): void {
    const info = peerInfo(session);
    if (!this.isConnected) {
      this.isConnected = true;
      this.safeHook(() => this.onConnect());
      this.emit("connect");
    }
    this.safeHook(() => this.onPeerConnect(session.clientId));
    this.emit("peer-connect", info);
    for (const key of this.localSubscriptions) session.send({ type: "subscribe", id: randomId(), key });
    if (this.options.server && session.isServer && this.options.serverSync) this.sync.start(session);
    if (!this.options.server) this.outbox.linked(session);
  }

  sessionClosed(session: PeerSession, code: number, reason: string): void {
    this.remoteSubscriptions.dropPeer(session.clientId);
    this.safeHook(() => this.onPeerDisconnect(session.clientId));
    this.emit("peer-disconnect", { ...peerInfo(session), code, reason });
    if (this.isConnected && this.network.peers.length === 0) {
      this.isConnected = false;
      this.safeHook(() => this.onDisconnect());
      this.emit("disconnect");
    }
  }

  refused(event: RefusalEvent): void {
    this.log("refused (%s) %s%s", event.code, event.reason, event.peer ? ` from ${event.peer}` : "");
    this.emit("refused", event);
  }

  private safeHook(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      this.log("hook threw: %s", errorText(err));
    }
  }

  // ---- records ---------------------------------------------------------

  getUserNamespacedKey(key: string): string {
    return userNamespacedKey(this.userAccount.getAddress() ?? "", key);
  }

  private finalKey(key: string, userNamespaced: boolean): string {
    if (typeof key !== "string" || key.length === 0) throw new ToolDbError(ErrorCode.INVALID_KEY, "key must be a non-empty string");
    if (!userNamespaced) return key;
    const address = this.userAccount.getAddress();
    if (!address) throw new ToolDbError(ErrorCode.NOT_SIGNED_IN, "sign in before using namespaced keys");
    return userNamespacedKey(address, key);
  }

  /**
   * Verifies a record from anywhere, merges it (last writer wins), and on a
   * change notifies listeners and relays. Returns what the store holds for
   * the key afterwards, or undefined when the record was refused.
   */
  async acceptRecord(
    record: unknown,
    from?: PeerSession,
    to: string[] = [],
    messageId?: string,
    pendingVerdict?: Promise<Verdict>,
  ): Promise<ToolDbRecord | undefined> {
    const heads = splitHeads(record);
    if (heads) {
      // A CRDT document with several signed change lists: each is verified and merged on its own.
      let winner: ToolDbRecord | undefined;
      for (const head of heads) winner = (await this.acceptRecord(head, from, to)) ?? winner;
      return winner;
    }
    const verdict = await (pendingVerdict ?? this.verifier.verify(record));
    if (verdict.result !== VerifyResult.Verified) {
      const key = typeof (record as { k?: unknown })?.k === "string" ? ((record as { k: string }).k.slice(0, 128)) : undefined;
      const event = { code: ErrorCode.RECORD_REFUSED, reason: `${verdict.result}: ${verdict.reason ?? ""}`, key };
      if (from) this.network.strikePeer(from, event.code, event.reason, key);
      else this.refused(event);
      return undefined;
    }
    const rec = record as ToolDbRecord;
    const custom = await this.customVerifiers.refusal(rec, this.records);
    if (custom) {
      this.refused({ code: ErrorCode.CUSTOM_VERIFICATION_FAILED, reason: `${VerifyResult.CustomVerificationFailed}: ${custom}`, key: rec.k.slice(0, 128), peer: from?.clientId });
      return undefined;
    }
    const overQuota = from ? await this.quota.check(rec) : null;
    if (overQuota) {
      this.refused({ code: ErrorCode.QUOTA_EXCEEDED, reason: overQuota, key: rec.k.slice(0, 128), peer: from?.clientId });
      return undefined;
    }
    const outcome = await this.mergeVerified(rec);
    if (outcome.refused) {
      this.refused({ code: ErrorCode.RECORD_REFUSED, reason: outcome.refused, key: rec.k.slice(0, 128), peer: from?.clientId });
      return undefined;
    }
    this.quota.merged(rec, outcome);
    if (this.closed) return outcome.winner;
    if (!outcome.changed && isFirstWriterKey(rec.k) && outcome.winner.a !== rec.a) {
      const key = rec.k.slice(0, 128);
      this.refused({ code: ErrorCode.RECORD_REFUSED, reason: `${VerifyResult.CantOverwrite}: ${key} belongs to its first writer`, key, peer: from?.clientId });
    }
    if (outcome.changed) {
      this.emit("put", rec, from?.clientId);
      this.emit("data", rec);
      this.keyListeners.trigger(rec, (err) => this.log("key listener threw: %s", errorText(err)));
      this.relay(rec, from, to, messageId ?? randomId());
    } else if (from && outcome.winner.h !== rec.h && rec.c === null) {
      // The sender is behind: answer with what wins here so both converge.
      from.send({ type: "put", id: randomId(), data: outcome.winner });
    }
    return outcome.winner;
  }

  /** Servers pass changes on to other servers and to subscribed peers. */
  private relay(record: ToolDbRecord, from: PeerSession | undefined, to: string[], id: string): void {
    if (!this.options.server || !from) return;
    const subscribers = this.remoteSubscriptions.subscribers(record.k);
    const message = { type: record.c === null ? ("put" as const) : ("crdtPut" as const), id, data: record, to: [...to, from.clientId] };
    this.network.sendToAll(message, (s) => s.isServer || (subscribers?.has(s.clientId) ?? false));
  }

  /** `options.ack`: resolve once that many servers confirmed the write durably (see docs/protocol.md). */
  async putData<T = unknown>(key: string, value: T, userNamespaced = false, options: PutOptions = {}): Promise<PutMessage> {
    await this.readyPromise;
    if (key.includes(".")) throw new ToolDbError(ErrorCode.INVALID_KEY, `keys cannot contain dots: ${key}`);
    const finalKey = this.finalKey(key, userNamespaced);
    return this.putRecordAs(this.userAccount, finalKey, value, options);
  }

  /** Plain records: last writer wins; CRDT records (`c` set): merged into the key's document. */
  private mergeVerified(record: ToolDbRecord): Promise<MergeOutcome> {
    return record.c === null ? this.records.merge(record) : this.crdtDocs.merge(record);
  }

  private async putRecordAs(account: ToolDbUserAdapter, key: string, value: unknown, options: PutOptions = {}, crdtType: string | null = null): Promise<PutMessage> {
    if (!account.getAddress()) throw new ToolDbError(ErrorCode.NOT_SIGNED_IN, "sign in before you put");
    const record = await signRecord(account, key, value, await this.nextTimestamp(key), this.options.pow, this.options.legacyRecords, crdtType);
    const message: PutMessage = { type: crdtType === null ? "put" : ("crdtPut" as "put"), id: randomId(), to: [], data: record, ack: true };
    const custom = await this.customVerifiers.refusal(record, this.records);
    if (custom) throw new ToolDbError(ErrorCode.CUSTOM_VERIFICATION_FAILED, custom);
    const outcome = await this.mergeVerified(record);
    if (outcome.refused) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, outcome.refused);
    this.quota.merged(record, outcome);
    if (outcome.changed && !this.closed) {
      this.emit("put", record, undefined);
      this.emit("data", record);
      this.keyListeners.trigger(record, (err) => this.log("key listener threw: %s", errorText(err)));
    }
    const tracked = this.options.server ? undefined : this.outbox.add(record);
    const confirmed = this.acks.wait(record.h, options.ack ?? 0, options.timeoutMs);
    if (this.network.sendToAll(message) > 0) this.outbox.sent(record);
    await Promise.all([tracked, confirmed]);
    return message;
  }

  /**
   * Timestamps of this node's writes strictly increase, and a write beats
   * what is stored for the key: two puts in the same millisecond must not
   * be ordered by the hash tie-break.
   */
  private async nextTimestamp(key: string): Promise<number> {
    const stored = await this.records.get(key);
    const t = Math.max(this.now(), this.lastWriteTime + 1, stored ? stored.t + 1 : 0);
    this.lastWriteTime = t;
    return t;
  }

  private lastWriteTime = 0;

  /**
   * The value under `key`: the local copy at once when there is one (and a
   * background refresh from peers), else the first verified reply from the
   * network, else null after `timeoutMs`.
   */
  async getData<T = unknown>(key: string, userNamespaced = false, timeoutMs = 1000): Promise<T | null> {
    await this.readyPromise;
    const record = await this.getRecord(this.finalKey(key, userNamespaced), timeoutMs, "get");
    return record ? (record.v as T) : null;
  }

  /** The stored record (for a CRDT key, the whole document) under `finalKey`, as getData finds it. */
  private async getRecord(finalKey: string, timeoutMs: number, type: "get" | "crdtGet"): Promise<ToolDbRecord | undefined> {
    const local = await this.records.get(finalKey);
    if (this.network.peers.length === 0 || this.closed) return local;
    const id = randomId();
    const reply = new Promise<ToolDbRecord | undefined>((resolve) => {
      this.requests.add(
        id,
        timeoutMs,
        (message) => {
          if (message.type !== "put" && message.type !== "crdtPut") return true;
          resolve(message.data as ToolDbRecord);
        },
        () => resolve(undefined),
      );
    });
    this.network.sendToAll({ type, id, key: finalKey });
    if (local) return local;
    return (await reply) ?? (await this.records.get(finalKey).catch(() => undefined));
  }

  /** Signs `crdt`'s change list as a record of type `crdt.type`, merges it here and sends it (crdtPut). */
  async putCrdt(key: string, crdt: BaseCrdt, userNamespaced = false): Promise<PutMessage> {
    await this.readyPromise;
    if (key.includes(".")) throw new ToolDbError(ErrorCode.INVALID_KEY, `keys cannot contain dots: ${key}`);
    const changes = crdt.getChanges();
    const problem = crdtRecordProblem(crdt.type, changes);
    if (problem) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, problem);
    return this.putRecordAs(this.userAccount, this.finalKey(key, userNamespaced), changes, {}, crdt.type);
  }

  /**
   * Merges every change stored under `key` (local, else the first verified
   * crdtPut reply) into `crdt`; resolves the document, or null.
   */
  async getCrdt(key: string, crdt: BaseCrdt, userNamespaced = false, timeoutMs = 1000): Promise<CrdtDocument | null> {
    await this.readyPromise;
    const doc = (await this.getRecord(this.finalKey(key, userNamespaced), timeoutMs, "crdtGet")) as CrdtDocument | undefined;
    if (!doc || doc.c === null) return null;
    for (const head of headsOf(doc)) crdt.mergeChanges(head.v);
    return doc;
  }

  /** Delivers the current value and every later change of `key` to key listeners. */
  async subscribeData(key: string, userNamespaced = false): Promise<void> {
    await this.readyPromise;
    const finalKey = this.finalKey(key, userNamespaced);
    this.localSubscriptions.add(finalKey);
    this.network.sendToAll({ type: "subscribe", id: randomId(), key: finalKey });
    const local = await this.records.get(finalKey);
    if (local) this.keyListeners.trigger(local, (err) => this.log("key listener threw: %s", errorText(err)));
  }

  /** Stops re-subscribing to `key` on new links (servers forget on disconnect). */
  unsubscribeData(key: string, userNamespaced = false): void {
    this.localSubscriptions.delete(this.finalKey(key, userNamespaced));
  }

  addKeyListener<T = unknown>(key: string, fn: (record: ToolDbRecord<T>) => void): number {
    return this.keyListeners.add(key, fn as KeyListener);
  }

  removeKeyListener(id: number): void {
    this.keyListeners.remove(id);
  }

  /** `fn(record, previous)` must resolve true for every verified record under `keyPrefix`, local or remote, before it is stored. */
  addCustomVerification<T = any>(keyPrefix: string, fn: CustomVerification<T>): number {
    return this.customVerifiers.add(keyPrefix, fn);
  }

  removeCustomVerification(id: number): void {
    this.customVerifiers.remove(id);
  }

  /** tool-db's id listener: `fn` gets the first reply with this message id (bounded: dropped after `timeoutMs`). */
  addIdListener(id: string, fn: (message: ToolDbMessage) => void, timeoutMs = 60_000): void {
    this.requests.add(id, timeoutMs, (message) => void fn(message), () => undefined);
  }

  removeIdListener(id: string): void {
    this.requests.remove(id);
  }

  /** Keys starting with `prefix`, from the local store and every peer that answers within `timeoutMs`. */
  async queryKeys(prefix: string, userNamespaced = false, timeoutMs = 1000): Promise<string[]> {
    await this.readyPromise;
    const finalKey = userNamespaced ? this.finalKey(prefix, true) : prefix;
    const found = new Set(await this.records.query(finalKey));
    if (this.network.peers.length === 0 || this.closed) return [...found].sort();
    const id = randomId();
    await new Promise<void>((resolve) => {
      this.requests.add(
        id,
        timeoutMs,
        (message) => {
          if (message.type === "queryAck") for (const k of message.keys) if (k.startsWith(finalKey)) found.add(k);
          return true;
        },
        resolve,
      );
      this.network.sendToAll({ type: "query", id, key: finalKey });
    });
    return [...found].sort();
  }

  // ---- server functions ------------------------------------------------

  addServerFunction(name: string, fn: ServerFunction): void {
    this.functions.set(name, fn);
  }

  /** Runs a server function on the first peer that has it. */
  async doFunction(name: string, args: unknown, timeoutMs = 10_000): Promise<FunctionReturn> {
    await this.readyPromise;
    const peers = this.network.peers.length;
    if (peers === 0) return { code: "ERR", return: "Not connected" };
    const id = randomId();
    let notFound = 0;
    return new Promise<FunctionReturn>((resolve) => {
      this.requests.add(
        id,
        timeoutMs,
        (message) => {
          if (message.type !== "functionReturn") return true;
          if (message.code === "NOT_FOUND" && ++notFound < peers) return true;
          resolve({ code: message.code, return: message.return });
        },
        () => resolve({ code: "ERR", return: "Timed out" }),
      );
      this.network.sendToAll({ type: "function", id, function: name, args });
    });
  }

  // ---- users -----------------------------------------------------------

  async anonSignIn(): Promise<void> {
    await this.readyPromise;
    await this.userAccount.anonUser();
    await this.nodeKeys.save(this.userAccount, USER_KEYS);
  }

  async keysSignIn(privateKey: string, username?: string): Promise<UserKeys> {
    await this.readyPromise;
    const keys = await this.userAccount.getAccountFromPrivate(privateKey);
    await this.userAccount.setUser(keys, username ?? randomName());
    await this.nodeKeys.save(this.userAccount, USER_KEYS);
    return keys;
  }

  /**
   * Creates the account record `==<user>` holding the keys encrypted with the
   * password (ToolDb's format). Does not sign in, as in ToolDb.
   */
  async signUp(user: string, password: string): Promise<PutMessage> {
    await this.readyPromise;
    const key = `==${user}`;
    if (user.length === 0 || user.includes(".")) throw new ToolDbError(ErrorCode.INVALID_KEY, "user names are non-empty and have no dots");
    if (await this.records.get(key)) throw new ToolDbError(ErrorCode.USER_EXISTS, `user ${user} already exists`);
    if (this.network.peers.length > 0 && (await this.getData(key, false, 1000)) !== null) {
      throw new ToolDbError(ErrorCode.USER_EXISTS, `user ${user} already exists`);
    }
    const account = new this.options.userAdapter(this);
    await account.ready;
    const encrypted = await account.encryptAccount(sha256Hex(password));
    encrypted.name = user;
    return this.putRecordAs(account, key, encrypted);
  }

  /** Fetches `==<user>`, decrypts it with the password and makes it the current user. */
  async signIn(user: string, password: string): Promise<EncryptedAccount> {
    await this.readyPromise;
    const stored = await this.getData<EncryptedAccount>(`==${user}`, false, 2000);
    if (!stored) throw new ToolDbError(ErrorCode.USER_NOT_FOUND, `user ${user} not found`);
    const keys = await this.userAccount.decryptAccount(stored, sha256Hex(password));
    await this.userAccount.setUser(keys, user);
    await this.nodeKeys.save(this.userAccount, USER_KEYS);
    return stored;
  }
}

function peerInfo(session: PeerSession): PeerInfo {
  return {
    peerId: session.clientId,
    address: session.address,
    isServer: session.isServer,
    outgoing: session.outgoing,
    host: session.host,
    port: session.port,
  };
}
