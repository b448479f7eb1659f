import type { BaseCrdt } from "../crdt/base-crdt.js";
import { crdtRecordProblem } from "../crdt/changes.js";
import { CrdtDocs, headsOf, type CrdtDocument } from "./crdt-docs.js";
import type { NetworkHost, RefusalEvent, ToolDbNetworkAdapter } from "../network/network-adapter.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import type { EncryptedAccount, SignedHash, ToolDbUserAdapter, UserKeys } from "../users/user-adapter.js";
import { Accounts, type SignUpOptions } from "./accounts.js";
import type { Acks, PutOptions, PutRefusal } from "./acks.js";
import { BoundedSet } from "../base/bounded-set.js";
import { monotonicNow } from "../base/clock.js";
import { BroadcastTree } from "./broadcast/broadcast-tree.js";
import { ErrorCode, ToolDbError, errorText } from "../base/errors.js";
import { checkCrdt, functionArgument, functionRate, keyArgument, keyPrefixArgument, putOptions, stringArgument } from "./api-arguments.js";
import { resolveLimits } from "../limits/limits.js";
import { FrameFit } from "../limits/frame-fit.js";
import { LocalWriter } from "./local-writer.js";
import { Closing, type CloseHook } from "./closing.js";
import { createLogger, type LogFn } from "../base/logger.js";
import { QUERY_PAGES_CAPABILITY, type PeerRecord, type PutMessage, type ToolDbMessage } from "../records/messages.js";
import type { NodeContext } from "./node-context.js";
import { NodeKeys } from "./node-keys.js";
import { type LifecycleParts, closeNode, startNode } from "./node-lifecycle.js";
import type { FunctionReturn, ServerFunction } from "./node-types.js";
import { ServerFunctions, type ServerFunctionOptions } from "./server-functions.js";
import { keyStoreName, type ToolDbOptions } from "./options.js";
import { nodeOptions } from "./option-checks.js";
import type { Outbox } from "./outbox.js";
import { deliveryFor } from "./write-delivery.js";
import type { ServerTrust } from "./server-trust.js";
import { MeritRecords } from "./merit-records.js";
import type { PeerRecordProblem } from "../records/peer-record.js";
import { PeerEvents } from "./peer-events.js";
import { PendingRequests } from "./pending-requests.js";
import { networkAdapterFor, registeredClientExtension } from "./platform-defaults.js";
import { Protocol } from "./protocol.js";
import { StoreQuota } from "./quota.js";
import { randomId } from "../base/random.js";
import { RecordIntake } from "./record-intake.js";
import { FrameIntake } from "./frame-intake.js";
import { RecordStore } from "./record-store.js";
import { RecordVerifier } from "../records/record-verifier.js";
import type { Admission } from "./duplicate-gate.js";
import { type ToolDbRecord, userNamespacedKey } from "../records/record.js";
import { RemoteRequests } from "./remote-requests.js";
import type { ServerDirectory } from "./server-directory.js";
import { directoryFor } from "./node-directory.js";
import type { ServerListLearner, ServerListSource } from "./server-list-learner.js";
import { ServerSync, type SyncProgress } from "./server-sync.js";
import { LegacyReasks } from "./legacy-reasks.js";
import type { ServerWatch } from "./server-watch.js";
import { RemoteSubscriptions } from "./subscriptions.js";
import { ToolDbListeners } from "./tooldb-listeners.js";

export type { ToolDbEvents, PeerInfo, ServerFunction, FunctionReturn, RecordMessage, UsernameConflict, LostUsername } from "./node-types.js";
export type { PutRefusal } from "./acks.js";
export type { SignUpOptions } from "./accounts.js";

/**
 * A ToolDb node: a signed, offline-first key-value database that keeps
 * ToolDb's API and wire format, and verifies everything it accepts.
 */
export class ToolDb extends ToolDbListeners implements NetworkHost, NodeContext {
  readonly options: ToolDbOptions;
  readonly store: ToolDbStorageAdapter;
  readonly records: RecordStore;
  /** Key counts and store quotas (enforced on servers). */
  readonly quota: StoreQuota;
  readonly crdtDocs: CrdtDocs;
  readonly network: ToolDbNetworkAdapter;
  readonly frames: FrameFit; // what peers accept: the sizes every path that builds frames follows
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
  readonly remoteSubscriptions: RemoteSubscriptions;
  readonly localSubscriptions = new Set<string>(); // keys this node subscribed to; re-sent to every new link
  readonly functions = new ServerFunctions(this); // its clock and refusal reports are the node's
  readonly merit = new MeritRecords(); // a client's records that earn link merit when delivered again
  readonly reasks: LegacyReasks; // a 2.6.6 peer is pinged before it is asked again for a key it sent
  readonly processed: BoundedSet<string>;
  readonly requests: PendingRequests<ToolDbMessage, PeerSession>;
  /** A client's writes no server has confirmed yet (servers rely on server sync instead). */
  readonly outbox: Outbox;
  readonly acks: Acks;
  readonly serverWatch: ServerWatch; // a client's linked servers judged by whether they answer (dropped when silent)
  readonly serverTrust: ServerTrust; // the servers whose confirmation lets a client's write leave its outbox (listed, or with merit)
  readonly broadcast: BroadcastTree;
  private readonly keyStore: ToolDbStorageAdapter;
  private readonly nodeKeys: NodeKeys;
  private readonly protocol: Protocol;
  private readonly directory: ServerDirectory;
  readonly serverLists: ServerListLearner; // linked sessions' server lists into the directory, rate-bounded
  private readonly intake: RecordIntake;
  private readonly frameIntake: FrameIntake;
  private readonly writer: LocalWriter;
  private readonly remote: RemoteRequests;
  private readonly accounts: Accounts;
  private readonly peerEvents: PeerEvents;
  readonly sync: ServerSync;
  private readonly readyPromise: Promise<void>;
  private closePromise: Promise<void> | undefined;
  private readonly closing: Closing; // writes begun before close(), and the close hooks of what wraps the node
  private extension: { close(): Promise<void> } | undefined;
  private closed = false;

  constructor(options: Partial<ToolDbOptions> = {}) {
    super();
    this.options = nodeOptions(options);
    this.log = createLogger(`node:${this.options.server ? "server" : "client"}`, this.options.debug);
    const { pow, legacyRecords: acceptLegacyRecords } = this.options;
    this.verifier = new RecordVerifier({ pow, acceptLegacyRecords, verifySignature: (m) => this.peerAccount.verifySignature(m), now: () => this.now(), checkCrdt: crdtRecordProblem });
    this.processed = new BoundedSet(this.options.dedupCapacity);
    this.requests = new PendingRequests(this.options.maxPendingRequests, this.options.clock);
    this.reasks = new LegacyReasks({ now: () => this.monotonic(), ping: (s) => this.network.requestServers(s), clock: this.options.clock });
    this.closing = new Closing(this.log, this.options.clock);
    const limits = resolveLimits(this.options.limits);
    this.remoteSubscriptions = new RemoteSubscriptions(this.options.maxSubscriptionsPerPeer, limits.maxSubscriptions);
    this.store = new this.options.storageAdapter(this, this.options.storageName);
    this.keyStore = new this.options.storageAdapter(this, keyStoreName(this.options.storageName));
    this.frames = new FrameFit(this.options);
    this.records = new RecordStore(this.store, this.frames.maxRecordBytes, (reason, key) => this.refused({ code: ErrorCode.INVALID_KEY, reason, key }));
    this.quota = new StoreQuota(limits, this.records, this.options.server, () => this.now());
    this.crdtDocs = new CrdtDocs(this.records);
    this.peerAccount = new this.options.userAdapter(this);
    this.userAccount = new this.options.userAdapter(this);
    this.network = new (networkAdapterFor(this.options.networkAdapter))(this);
    this.network.on("dial-failed", (e) => this.emit("dial-failed", e));
    this.protocol = new Protocol(this);
    const delivery = { recovered: (s: PeerSession, drops: number) => this.peerEvents.recovered(s, drops), writeRefused: (refusal: PutRefusal) => this.accounts.putRefused(refusal) };
    ({ serverWatch: this.serverWatch, outbox: this.outbox, acks: this.acks, serverTrust: this.serverTrust } = deliveryFor(this, this.keyStore, delivery));
    this.on("username-conflict-resolved", (conflict) => this.accounts.conflictResolved(conflict));
    this.nodeKeys = new NodeKeys(this.keyStore, this.log);
    this.sync = new ServerSync(this);
    this.broadcast = new BroadcastTree(this);
    this.intake = new RecordIntake(this);
    this.frameIntake = new FrameIntake(this, this.intake);
    this.writer = new LocalWriter(this, this.intake);
    this.remote = new RemoteRequests(this);
    this.peerEvents = new PeerEvents(this);
    this.accounts = new Accounts(this, this.nodeKeys, this.writer, (key, timeoutMs) => this.getData(key, false, timeoutMs));
    ({ directory: this.directory, serverLists: this.serverLists } = directoryFor(this, limits.exemptIps));
    this.readyPromise = startNode(this.parts(), () => (this.extension = registeredClientExtension<ToolDb>()?.(this)));
    // Failures surface through `ready`; never as an unhandled rejection.
    this.readyPromise.catch((err) => this.log("init failed: %s", errorText(err)));
  }

  // ---- lifecycle -------------------------------------------------------

  /** Resolves once keys are loaded and a server listens; rejects with CLOSED when close() came first. */
  get ready(): Promise<void> { return this.readyPromise; }

  /** Waits for `ready`; on a node closed (or closing) rejects with CLOSED before the call `what` changes anything. */
  private async opened(what: string): Promise<void> { await this.readyPromise; if (this.closed) throw new ToolDbError(ErrorCode.CLOSED, `${what}: the node is closed`); }
  /** A write called before close() runs to its end: close() waits for it (bounded, CLOSE_WRITES_MS). Once closed: CLOSED. */
  private write<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ToolDbError(ErrorCode.CLOSED, `${what}: the node is closed`));
    return this.closing.track(this.readyPromise.then(run));
  }
  get topic(): string { return this.options.topic; }
  get isServer(): boolean { return this.options.server; }

  private parts(): LifecycleParts { return { node: this, keyStore: this.keyStore, nodeKeys: this.nodeKeys, closing: this.closing }; }

  /**
   * Idempotent. Closes links, timers and stores; no event fires afterwards.
   * Writes called before it finish first (bounded); so do the close hooks.
   */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.closing.begin(); // a start-up still waiting for its stores stops (startNode)
    this.silence();
    await this.readyPromise.catch(() => undefined);
    await closeNode(this.parts(), this.extension);
  }

  get isClosed(): boolean { return this.closed; }

  /** Runs `hook` once when close() begins; close() waits for it. For what owns this node (DhtNode). Returns what removes it. */
  onClose(hook: CloseHook): () => void { return this.closing.add(hook); }

  /** Server catch-up progress (metrics, status). */
  get syncProgress(): Readonly<SyncProgress> { return this.sync.progress; }

  now(): number { return this.options.clock ? this.options.clock.now() : Date.now(); }

  /** The clock's monotonic time (`Clock.monotonic`): due-times of timers, which a wall-clock step must not move. */
  monotonic(): number { return monotonicNow(this.options.clock); }

  // ---- NetworkHost -----------------------------------------------------

  nodeAddress(): string { return this.peerAccount.getAddress() ?? ""; }

  localPeerRecord(): Promise<PeerRecord> { return this.directory.ownRecord(); }
  checkPeerRecord(record: PeerRecord, maxAgeMs?: number): Promise<PeerRecordProblem | null> { return this.directory.check(record, maxAgeMs); }
  capabilities(): string[] { return [...this.sync.capabilities(), ...this.broadcast.capabilities(), QUERY_PAGES_CAPABILITY]; }

  knownServers(): PeerRecord[] { return this.directory.list(this.network.peers); }

  learnServers(records: PeerRecord[], from: PeerSession, source: ServerListSource = "pong"): void { this.serverLists.offer(records, from, source); }

  /** tool-db compatible: the server records this node knows. */
  get serverPeers(): PeerRecord[] { return this.knownServers(); }
  handleMessage(message: ToolDbMessage, from: PeerSession): void | Promise<void> { return this.protocol.handle(message, from); }

  readonly sessionOpened = (session: PeerSession): void => this.peerEvents.opened(session);
  readonly sessionShed = (session: PeerSession, keys: readonly string[]): void => this.peerEvents.shed(session, keys);

  /** Handshake proofs are signed and checked with the node key, the key of its peer record. */
  readonly signHandshake = (digest: string): Promise<string> => this.peerAccount.signData(digest);
  readonly verifyHandshake = (proof: SignedHash): Promise<boolean> => this.peerAccount.verifySignature(proof);

  sessionClosed(session: PeerSession, code: number, reason: string): void { this.peerEvents.closed(session, code, reason); }
  sessionRevived(session: PeerSession, silentMs: number): void { if (!this.closed) this.peerEvents.revived(session, silentMs); }

  refused(event: RefusalEvent): void {
    this.log("refused (%s) %s%s", event.code, event.reason, event.peer ? ` from ${event.peer}` : "");
    this.emit("refused", event);
  }

  // ---- records ---------------------------------------------------------

  getUserNamespacedKey(key: string): string { return userNamespacedKey(this.userAccount.getAddress() ?? "", key); }

  private finalKey(key: string, userNamespaced: boolean, write = false): string { return keyArgument(this.userAccount, key, userNamespaced, write); }

  /** Verifies a record from anywhere and merges it; see RecordIntake.accept (and `admit` for `admission`). */
  acceptRecord(record: unknown, from?: PeerSession, to: string[] = [], messageId?: string, admission?: Admission): Promise<ToolDbRecord | undefined> {
    return this.intake.accept(record, from, to, messageId, admission);
  }
  admitRecord(record: unknown): Admission | undefined { return this.intake.admit(record); }
  acceptFrame(records: readonly unknown[], from: PeerSession, stored: () => void, spread = true): Promise<void> { return this.frameIntake.accept(records, from, stored, spread); }

  /** `options.ack`: resolve once that many servers confirmed the write durably (see docs/protocol-messages.md); close() first: CLOSED. */
  async putData<T = unknown>(key: string, value: T, userNamespaced = false, options: PutOptions | string[] = {}): Promise<PutMessage> {
    const checked = putOptions(options);
    return this.write("putData", () => this.writer.put(this.userAccount, this.finalKey(key, userNamespaced, true), value, checked));
  }

  /**
   * The value under `key`: the local copy at once when there is one (and a
   * background refresh from peers), else the first verified reply from the
   * network, else null after `timeoutMs`.
   */
  async getData<T = unknown>(key: string, userNamespaced = false, timeoutMs = 1000): Promise<T | null> {
    await this.opened("getData");
    const record = await this.remote.getRecord(this.finalKey(key, userNamespaced), timeoutMs, "get");
    return record ? (record.v as T) : null;
  }

  /** Signs `crdt`'s change list as a record of type `crdt.type`, merges it here and sends it (crdtPut). */
  async putCrdt(key: string, crdt: BaseCrdt, userNamespaced = false): Promise<PutMessage> {
    checkCrdt(crdt, "getChanges");
    return this.write("putCrdt", async () => {
      const changes = crdt.getChanges();
      const problem = crdtRecordProblem(crdt.type, changes);
      if (problem) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, problem);
      return this.writer.put(this.userAccount, this.finalKey(key, userNamespaced, true), changes, {}, crdt.type);
    });
  }

  /**
   * Merges every change stored under `key` (local, else the first verified
   * crdtPut reply) into `crdt`; resolves the document, or null.
   */
  async getCrdt(key: string, crdt: BaseCrdt, userNamespaced = false, timeoutMs = 1000): Promise<CrdtDocument | null> {
    checkCrdt(crdt, "mergeChanges");
    await this.opened("getCrdt");
    const doc = (await this.remote.getRecord(this.finalKey(key, userNamespaced), timeoutMs, "crdtGet")) as CrdtDocument | undefined;
    if (!doc || doc.c === null) return null;
    for (const head of headsOf(doc)) crdt.mergeChanges(head.v);
    return doc;
  }

  /** Delivers the current value and every later change of `key` to key listeners. */
  async subscribeData(key: string, userNamespaced = false): Promise<void> {
    await this.opened("subscribeData");
    const finalKey = this.finalKey(key, userNamespaced);
    this.localSubscriptions.add(finalKey);
    const message = { type: "subscribe", id: randomId(), key: finalKey } as const;
    // A tool-db 2.6.6 peer that sent this key on the link answers with its record only after a ping (legacy-reasks.ts).
    this.network.sendToAll(message, (s) => this.reasks.mayAsk(s, finalKey, () => void s.send(message)));
    const local = await this.records.get(finalKey);
    if (local) this.keyListeners.trigger(local, (err) => this.log("key listener threw: %s", errorText(err)));
  }

  /** Stops re-subscribing to `key` on new links (servers forget on disconnect). */
  unsubscribeData(key: string, userNamespaced = false): void {
    this.localSubscriptions.delete(this.finalKey(key, userNamespaced));
  }

  /** Keys starting with `prefix`, from the local store and every peer that answers within `timeoutMs`. */
  async queryKeys(prefix: string, userNamespaced = false, timeoutMs = 1000): Promise<string[]> {
    await this.opened("queryKeys");
    const finalKey = userNamespaced ? this.finalKey(prefix, true) : keyPrefixArgument(prefix);
    return this.remote.queryKeys(finalKey, timeoutMs);
  }

  // ---- server functions ------------------------------------------------

  /** `options`: how often one link may call it (over it: ERR "RATE_LIMITED: …", reported in `refused` once a second per link at most, with a `count`). */
  addServerFunction(name: string, fn: ServerFunction, options?: ServerFunctionOptions): void {
    this.functions.add(stringArgument("name", name), functionArgument("fn", fn), functionRate(options));
  }

  /** Runs a server function on the first peer that has it. */
  async doFunction(name: string, args: unknown, timeoutMs = 10_000): Promise<FunctionReturn> {
    await this.readyPromise;
    return this.remote.doFunction(name, args, timeoutMs);
  }

  // ---- users -----------------------------------------------------------

  // Sign-ins and sign-ups are writes (the account record, the saved keys): close() drains them as it does puts.
  async anonSignIn(): Promise<void> {
    return this.write("anonSignIn", () => this.accounts.anonSignIn());
  }

  async keysSignIn(privateKey: string, username?: string): Promise<UserKeys> {
    return this.write("keysSignIn", () => this.accounts.keysSignIn(privateKey, username));
  }

  /**
   * Creates the account record `==<user>` holding the keys encrypted with the
   * password (ToolDb's format). Does not sign in, as in ToolDb. Local-first
   * as in tool-db 2.6.6: resolves once stored here and sent; a later refusal
   * or an older sign-up elsewhere fires `signup-conflict-detected`. With
   * `{ ack: n }`, resolves once `n` servers stored it, else rejects
   * (USER_EXISTS when an older sign-up holds the name, PUT_REFUSED, ACK_TIMEOUT).
   */
  async signUp(user: string, password: string, options?: SignUpOptions | string[]): Promise<PutMessage> {
    return this.write("signUp", () => this.accounts.signUp(user, password, options));
  }

  /** Fetches `==<user>`, decrypts it with the password and makes it the current user (a close() during the fetch: CLOSED, no change). */
  async signIn(user: string, password: string): Promise<EncryptedAccount> {
    return this.write("signIn", () => this.accounts.signIn(user, password));
  }
}
