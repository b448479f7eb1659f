/**
 * What the node's parts (message handlers, server sync, range
 * reconciliation, record intake, writes, requests, accounts) use of the
 * node. ToolDb implements it; the parts import this interface rather than
 * ToolDb, so no import cycle runs through tooldb.ts.
 */
import type { ToolDbNetworkAdapter } from "../network/network-adapter.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import type { CrdtDocs } from "./crdt-docs.js";
import type { Acks } from "./acks.js";
import type { BoundedSet } from "../base/bounded-set.js";
import type { BroadcastTree } from "./broadcast/broadcast-tree.js";
import type { CustomVerifiers } from "../records/custom-verifiers.js";
import type { KeyListeners } from "./key-listeners.js";
import type { LogFn } from "../base/logger.js";
import type { FrameFit } from "../limits/frame-fit.js";
import type { SyncMessage, ToolDbMessage } from "../records/messages.js";
import type { ToolDbEvents } from "./node-types.js";
import type { ServerFunctions } from "./server-functions.js";
import type { ToolDbOptions } from "./options.js";
import type { Outbox } from "./outbox.js";
import type { MeritRecords } from "./merit-records.js";
import type { LegacyReasks } from "./legacy-reasks.js";
import type { PendingRequests } from "./pending-requests.js";
import type { StoreQuota } from "./quota.js";
import type { ToolDbRecord } from "../records/record.js";
import type { RecordStore } from "./record-store.js";
import type { RecordVerifier } from "../records/record-verifier.js";
import type { Admission } from "./duplicate-gate.js";
import type { RemoteSubscriptions } from "./subscriptions.js";
import type { ServerWatch } from "./server-watch.js";
import type { TypedEmitter } from "../base/typed-emitter.js";

export interface NodeContext extends Pick<TypedEmitter<ToolDbEvents>, "emit" | "listenerCount"> {
  readonly options: ToolDbOptions;
  readonly log: LogFn;
  readonly store: ToolDbStorageAdapter;
  readonly records: RecordStore;
  readonly crdtDocs: CrdtDocs;
  readonly quota: StoreQuota;
  readonly network: ToolDbNetworkAdapter;
  readonly frames: FrameFit;
  readonly verifier: RecordVerifier;
  readonly customVerifiers: CustomVerifiers;
  readonly keyListeners: KeyListeners;
  readonly remoteSubscriptions: RemoteSubscriptions;
  readonly functions: ServerFunctions;
  readonly processed: BoundedSet<string>;
  readonly requests: PendingRequests<ToolDbMessage, PeerSession>;
  readonly outbox: Outbox;
  /** A client's records that earn link merit when delivered again (merit-records.ts). */
  readonly merit: MeritRecords;
  /** Pings a tool-db 2.6.6 peer before asking it again for a key it sent on the link (legacy-reasks.ts). */
  readonly reasks: LegacyReasks;
  readonly acks: Acks;
  /** A client's judgement of its linked servers: asked and answered (src/node/server-watch.ts). */
  readonly serverWatch: ServerWatch;
  /** Relay between servers on the broadcast tree (src/node/broadcast). */
  readonly broadcast: BroadcastTree;
  /** A push's handling resolves once its records were taken in (the intake weighs it until then). */
  readonly sync: { handle(message: SyncMessage, from: PeerSession): Promise<void> | undefined; start(session: PeerSession): void; reconciles(session: PeerSession): boolean };
  /** Keys this node subscribed to (a client takes puts of these, of keys it holds, and replies to its requests). */
  readonly localSubscriptions: ReadonlySet<string>;
  readonly userAccount: ToolDbUserAdapter;
  readonly isServer: boolean;
  readonly isClosed: boolean;
  now(): number;
  /** Monotonic time (`Clock.monotonic`): due-times of timers. */
  monotonic(): number;
  refused(event: RefusalEvent): void;
  /** Verifies a record from anywhere and merges it; see RecordIntake.accept. */
  acceptRecord(record: unknown, from?: PeerSession, to?: string[], messageId?: string, admission?: Admission): Promise<ToolDbRecord | undefined>;
  /** Starts the duplicate check and verification of a record that `acceptRecord` merges later; see RecordIntake.admit. */
  admitRecord(record: unknown): Admission | undefined;
  /** Verifies and merges a frame of records from a reconciliation run; see FrameIntake.accept (`spread`: false for a store copy's). */
  acceptFrame(records: readonly unknown[], from: PeerSession, stored: () => void, spread?: boolean): Promise<void>;
}
