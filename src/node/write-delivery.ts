/**
 * How a node's writes reach servers, wired to the node (split from
 * tooldb.ts): the outbox that keeps a client's unconfirmed writes, the acks
 * that confirm or refuse them, the servers whose confirmations let a write
 * go (server-trust.ts), and the watch on linked servers that judges them by
 * whether they answer.
 */
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";
import type { ToolDbStorageAdapter } from "../stores/storage-adapter.js";
import type { TypedEmitter } from "../base/typed-emitter.js";
import { Acks, type PutRefusal } from "./acks.js";
import type { NodeContext } from "./node-context.js";
import type { ToolDbEvents } from "./node-types.js";
import { Outbox } from "./outbox.js";
import { ServerWatch, defaultUnresponsiveTimeout } from "./server-watch.js";
import { ServerTrust } from "./server-trust.js";

/** What the node's other parts (built after these) do about what delivery reports. */
export interface DeliveryHooks {
  /** A server dropped as silent answered again. */
  recovered(session: PeerSession, drops: number): void;
  /** A write a server refused, once the node reported it (`put-refused`). */
  writeRefused(refusal: PutRefusal): void;
}

type DeliveryNode = Pick<NodeContext, "options" | "log" | "records" | "network" | "store" | "requests" | "isClosed" | "emit" | "refused"> & Pick<TypedEmitter<ToolDbEvents>, "on">;

export function deliveryFor(node: DeliveryNode, keyStore: ToolDbStorageAdapter, hooks: DeliveryHooks): { serverWatch: ServerWatch; outbox: Outbox; acks: Acks; serverTrust: ServerTrust } {
  const { log, options } = node;
  const { outboxCapacity: capacity, outboxRetryInterval: retryInterval, clock, unresponsiveTimeout, serverProbeInterval: probeIntervalMs, unresponsiveRecovery: recoverAfterMs } = options;
  const watchHost = { log, refused: (e: RefusalEvent) => node.refused(e), recovered: (s: PeerSession, drops: number) => hooks.recovered(s, drops), waitsFor: (id: string) => node.requests.has(id) };
  const serverWatch = new ServerWatch(watchHost, { timeoutMs: unresponsiveTimeout ?? defaultUnresponsiveTimeout(retryInterval), enabled: !options.server, probeIntervalMs, recoverAfterMs }, clock);
  const overflow = (key: string) => node.emit("outbox-overflow", key);
  // A write a server refused (its answer, or the link it came on dropped as refused) is a put-refused, once per refusal.
  const putRefused = (refusal: PutRefusal) => void (node.emit("put-refused", refusal), hooks.writeRefused(refusal));
  const asked = (session: PeerSession) => serverWatch.asked(session, "put"); // and its putAcks answer (Acks)
  const serverTrust = new ServerTrust(options.peers);
  const trusts = (session: PeerSession) => serverTrust.trusts(session);
  const outbox = new Outbox(keyStore, { records: node.records, network: node.network, log, overflow, refused: putRefused, asked, trusts }, { capacity, retryInterval, clock });
  const confirmed = (h: string, server: string) => void (node.isClosed || node.emit("put-confirmed", { h, server }));
  const acks = new Acks(outbox, node.store, log, options.server, clock, { refused: putRefused, confirmed, answered: (from) => serverWatch.answered(from, "put") });
  node.on("refused", (event) => acks.noteRefusal(event)); // a server answers a put it refused with why (its putAck)
  return { serverWatch, outbox, acks, serverTrust };
}
