import { fitsBytes, utf8Length } from "../limits/frame-fit.js";
import type { OutgoingMessage, PeerRecord } from "../records/messages.js";
import type { Connection } from "./connection.js";
import type { TrafficCounters } from "./traffic.js";

const NO_CAPS: ReadonlySet<string> = new Set();
/** Capability sets shared between sessions (a server holds thousands of sessions and few distinct lists). Bounded. */
const sharedCaps = new Map<string, ReadonlySet<string>>();
const MAX_SHARED_CAPS = 64;

/** The set of a handshake's capability list, shared with every session that listed the same. */
export function capabilitySet(list: readonly string[] | undefined): ReadonlySet<string> {
  if (!list || list.length === 0) return NO_CAPS;
  const key = list.join("\n");
  let set = sharedCaps.get(key);
  if (!set) {
    set = new Set(list);
    if (sharedCaps.size < MAX_SHARED_CAPS) sharedCaps.set(key, set);
  }
  return set;
}

/** What a session sees of its link on a server: whether replies must wait for the peer to read, and the IP they are charged to. */
export interface SessionLink {
  /** True while the peer's requests wait until it reads its replies (the send budget), given how many it has in flight. */
  held(outstanding: number): boolean;
  /** The remote IP per-IP limits charge (incoming links from IPs that are not exempt). */
  readonly chargedIp: string | undefined;
  /**
   * Takes `messages` of the peer's message rate (the token bucket its frames
   * are let in by) if that many are left now: work a frame makes the server do
   * as several messages would (an IHAVE's store lookups, each a get's read).
   */
  spend(messages: number): boolean;
}
/** Gets asked again of one peer whose answers are waited for, at most (the oldest is forgotten first). */
const MAX_ASKED_AGAIN = 4096;

/** A connection that completed the ToolDb handshake with a verified identity. */
export class PeerSession {
  readonly openedAt: number;
  /** Wire extensions the peer listed in its handshake (none for tool-db 2.6.6); set with `capabilitySet`. */
  caps: ReadonlySet<string> = NO_CAPS;
  /**
   * The peer signed this session's fresh nonce with the key of its peer
   * record, so it holds that key now (not a replayed record). False for
   * tool-db 2.6.6 nodes, which prove nothing: legacy links.
   */
  proven = false;
  /**
   * The peer sent a verified record that changed this node's store: some
   * evidence that it holds data, which the server mesh weighs when it
   * prunes (peering/mesh-ranking.ts). One flag, set once.
   */
  sentNewRecord = false;
  /**
   * When (ms) the peer last delivered a record this node asked for: a
   * verified reply to its read that wins here and that it did not hold
   * when it asked (or, on a client, held but never sent to a peer since a
   * peer delivered it: node/merit-records.ts), or a change of a key it
   * subscribed to or listens to. 0 = never. Unsolicited records do not
   * count (anyone can sign records of its own), nor a record echoed back
   * (this node's own writes, or what it answered a peer's get with). Full
   * slots keep such links (slot-rotation.ts).
   */
  servedAt = 0;
  /** When (ms) the peer last answered a query or function call of this node (0 = never): weaker, an answer may be empty. */
  answeredAt = 0;
  /**
   * This node asked the peer for a record at least once (a get or a
   * subscribe): a client's link rotations judge only links asked something
   * (a client that only writes has nothing to judge a server by).
   */
  askedForRecords = false;
  /** The link's send budget and charged IP (set by the handshake; none where no budget applies). */
  link: SessionLink | undefined = undefined;
  /**
   * Set while a client lets go of the records this peer sends (its intake
   * had no room, network/client-shedding.ts): a record of the peer already
   * on its way in, not merged yet, is let go too, its key given here to
   * ask again.
   */
  letGo: ((key: string) => void) | undefined = undefined;
  /**
   * Gets this client sent the peer again for keys of records it let go
   * (client-shedding.ts): id -> key, the latest MAX_ASKED_AGAIN. The first
   * record answering one is never let go, wherever it waits.
   */
  private askedAgainIds: Map<string, string> | undefined = undefined;

  constructor(
    readonly connection: Connection,
    /** Full node address (public key), verified from the signed peer record. */
    readonly address: string,
    /** tool-db's id for the peer: last 20 chars of the address. */
    readonly clientId: string,
    readonly isServer: boolean,
    readonly record: PeerRecord,
    now: number,
    /** Counts what is sent on this session, by type. */
    private readonly traffic?: TrafficCounters,
    /** What the peer accepts: a frame over it is not sent (it would cost the link), see limits/frame-fit.ts. */
    private readonly maxFrameBytes = Number.POSITIVE_INFINITY,
  ) {
    this.openedAt = now;
  }

  /** This node sent the peer a get under `id` for `key`, asking again for a key of records it let go. */
  noteAskedAgain(id: string, key: string): void {
    const ids = (this.askedAgainIds ??= new Map());
    if (ids.size >= MAX_ASKED_AGAIN) ids.delete(ids.keys().next().value as string);
    ids.set(id, key);
  }

  /** Whether a record of `key` under `id` answers a get noted with `noteAskedAgain` and not answered yet. */
  askedAgain(id: string, key: string): boolean {
    return this.askedAgainIds?.get(id) === key;
  }

  /** A record answering that get is taken in: another under the same id is no longer one this node waits for. */
  answeredAgain(id: string): void {
    this.askedAgainIds?.delete(id);
    if (this.askedAgainIds?.size === 0) this.askedAgainIds = undefined;
  }

  /** A proven peer that says it is a server: what forwarded requests, acknowledgements and server sync may trust. */
  get provenServer(): boolean {
    return this.proven && this.isServer;
  }

  /**
   * True while further replies to this peer should wait until it reads
   * what it was sent, as its next request would (the server's send budget):
   * for answers of many records to one request (a graft).
   */
  mustWait(): boolean {
    return this.link?.held(0) ?? false;
  }

  /** The IP this peer's requests are charged to (undefined: exempt, dialed out, or a client). */
  get chargedIp(): string | undefined {
    return this.link?.chargedIp;
  }

  get outgoing(): boolean {
    return this.connection.info.outgoing;
  }

  get host(): string | undefined {
    return this.connection.info.remoteHost;
  }

  get port(): number | undefined {
    return this.connection.info.remotePort;
  }

  /** Sends a frame; false when it is over what the peer accepts (then it is not sent, and counted). */
  sendRaw(frame: string, type = "raw"): boolean {
    if (!fitsBytes(frame, this.maxFrameBytes)) {
      this.traffic?.tooLarge(type);
      return false;
    }
    this.connection.send(frame);
    if (type === "get" || type === "crdtGet" || type === "subscribe") this.askedForRecords = true;
    return true;
  }

  /** A frame built by hand (not from a message object), sent and counted as one message of `type`; false when not sent. */
  sendFrame(frame: string, type: string): boolean {
    if (this.connection.closed || !this.sendRaw(frame, type)) return false;
    this.traffic?.out(type);
    return true;
  }

  /**
   * Sends `message` with `data` set to a record given as its JSON text
   * (checked by the caller): the frame is spliced, not serialised again.
   */
  sendWithRecord(message: { type: "put" | "crdtPut"; id: string }, recordJson: string): boolean {
    if (this.connection.closed) return false;
    return this.sendSpliced(message.type, `{"to":[],"type":${JSON.stringify(message.type)},"id":${JSON.stringify(message.id)},"data":`, recordJson);
  }

  /** `sendWithRecord` for a message with fields of its own (a tree put: `to`, `r`, `o`, `w`). */
  sendFieldsWithRecord(fields: { type: "put" | "crdtPut"; id: string; [field: string]: unknown }, recordJson: string): boolean {
    if (this.connection.closed) return false;
    return this.sendSpliced(fields.type, `${JSON.stringify(fields).slice(0, -1)},"data":`, recordJson);
  }

  private sendSpliced(type: string, head: string, recordJson: string): boolean {
    // Measured in parts: the spliced frame is a rope, which counting its bytes would first copy.
    if (!fitsBytes(recordJson, this.maxFrameBytes - utf8Length(head) - 1)) {
      this.traffic?.tooLarge(type);
      return false;
    }
    this.connection.sendParts([head, recordJson, "}"]);
    this.traffic?.out(type);
    return true;
  }

  send(message: OutgoingMessage): boolean {
    if (this.connection.closed) return false; // not even serialised: a reply to a link dropped meanwhile (e.g. by the send budget)
    if (!this.sendRaw(JSON.stringify({ to: [], ...message }), message.type)) return false;
    this.traffic?.out(message.type);
    return true;
  }
}
