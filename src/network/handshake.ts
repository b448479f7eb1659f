/**
 * The handshake of a link: who the peer is. An outgoing link sends the
 * signed ping; the answer (a pong, or on an incoming link the ping) is
 * checked (peer record signature, topic, client id, not self), then the
 * duplicate-link rule and the session table decide whether a session opens.
 *
 * A peer record alone proves nothing (anyone may replay one seen in a pong),
 * so each side also challenges the other: the ping carries a fresh nonce,
 * the pong signs it with the answering node's record and carries a nonce of
 * its own, and the dialer signs that in a `proof` message before anything
 * else. The answering side opens its session only once that proof checks;
 * both sides then hold a proven session. tool-db 2.6.6 sends no nonce: its
 * links open as before, unproven (legacy), and never push a proven link out.
 * The messages and pure rules are in handshake-messages.ts; the link table
 * (link-table.ts) owns the links and sessions and calls in here until a
 * link has a session.
 */
import { ErrorCode, errorText } from "../base/errors.js";
import { GroupedBoundedSet } from "../base/grouped-bounded-set.js";
import type { PeerRecord, PingMessage, PongMessage, ProofMessage, ToolDbMessage } from "../records/messages.js";
import { type PeerRecordProblem, clientIdOf } from "../records/peer-record.js";
import { CloseCode, type Connection } from "./connection.js";
import type { GateRefusal } from "./connection-gate.js";
import {
  BAD_PROOF,
  DOWNGRADE,
  NO_IDENTITY,
  PROOF_FIRST,
  challengeFor,
  identityRefusal,
  keepNewLink,
  pingMessage,
  pongIdentity,
  pongMessage,
  proofAckMessage,
  proofHolds,
  proofMessage,
} from "./handshake-messages.js";
import type { Link } from "./link.js";
import type { LogFn } from "../base/logger.js";
import type { TypedEmitter } from "../base/typed-emitter.js";
import type { LinkGuard } from "./link-guard.js";
import type { NetworkEvents } from "./network-events.js";
import type { NetworkHost } from "./network-host.js";
import type { TrafficCounters } from "./traffic.js";
import { PeerSession, capabilitySet } from "./peer-session.js";

/** What the handshake uses of its adapter (a part of the link table's context). */
export interface HandshakeContext {
  readonly host: NetworkHost;
  readonly guard: LinkGuard;
  readonly traffic: TrafficCounters;
  readonly log: LogFn;
  /** What peers accept (the node's maxMessageBytes): sessions send nothing larger. */
  readonly maxFrameBytes: number;
  /** The adapter: duplicate events are its events. */
  readonly events: TypedEmitter<NetworkEvents>;
  isClosing(): boolean;
  now(): number;
}

/** What the handshake uses of its link table. */
export interface HandshakeOwner {
  readonly sessions: Map<string, PeerSession>;
  parse(link: Link, frame: string): ToolDbMessage | null | undefined;
  strike(link: Link | undefined, code: ErrorCode, reason: string): void;
  closeLink(link: Link, code: number, reason: string, refusal: ErrorCode | undefined): void;
  openSession(link: Link, session: PeerSession): void;
  /** A frame of the link, from the start (used for frames that arrived while a handshake step ran). */
  frameArrived(link: Link, frame: string): void;
}

/** The most identities remembered as proven, whatever the limits say (the memory stays bounded). */
const MAX_PROVEN_IDENTITIES = 1_000_000;

export class Handshake {
  /** Nodes that proved themselves (an unproven handshake in their name is then refused), by address site (/24, /48). */
  private readonly provedBefore: GroupedBoundedSet<string>;

  constructor(
    private readonly ctx: HandshakeContext,
    private readonly table: HandshakeOwner,
  ) {
    const { provenIdentities, provenIdentitiesPerRange } = ctx.guard.limits;
    const bound = (n: number) => Math.max(1, Math.min(MAX_PROVEN_IDENTITIES, Math.floor(n)));
    this.provedBefore = new GroupedBoundedSet(bound(provenIdentities), bound(provenIdentitiesPerRange));
  }

  /** Outgoing links: the ping that opens the handshake, with a fresh challenge. */
  async sendPing(link: Link): Promise<void> {
    try {
      const nonce = challengeFor(this.ctx.host);
      const ping = await pingMessage(this.ctx.host, nonce);
      if (nonce) link.challenge = { nonce, own: ping.peer };
      this.sendOn(link, "ping", JSON.stringify(ping));
    } catch (err) {
      this.table.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
    }
  }

  /** A handshake frame on a link without a session yet, counted by type as every other send is (tooldb_messages_sent_total). */
  private sendOn(link: Link, type: string, frame: string): void {
    link.connection.send(frame);
    this.ctx.traffic.out(type);
  }

  /** A frame on a link without a session: a ping (incoming) or pong (outgoing) starts the identity check, a proof and its ack end it. */
  onFrame(link: Link, frame: string): void {
    const message = this.table.parse(link, frame);
    if (!message) return;
    this.ctx.traffic.in(message.type);
    const outgoing = link.connection.info.outgoing;
    const challenge = link.challenge;
    if (challenge?.ping) {
      if (message.type === "proof") this.run(link, this.acceptProof(link, message));
      else this.refuse(link, PROOF_FIRST);
    } else if (challenge?.pong) {
      if (message.type === "proofAck") this.acceptProofAck(link);
      else this.refuse(link, PROOF_FIRST);
    } else if (outgoing && message.type === "pong") {
      this.run(link, this.acceptPong(link, message));
    } else if (!outgoing && message.type === "ping") {
      this.run(link, this.acceptPing(link, message));
    } else {
      this.table.strike(link, ErrorCode.BAD_MESSAGE, `${message.type} before handshake`);
    }
  }

  /**
   * Frames arriving while a step runs wait in the link's buffer. Those still
   * there after it, with no session yet (the next handshake message, sent at
   * once by the other side), are taken up again from the start.
   */
  private run(link: Link, step: Promise<void>): void {
    link.handshaking = true;
    void step
      .catch((err: unknown) => {
        // A step that failed unexpectedly (not a refusal, which closes the link itself) must not end as an unhandled rejection.
        if (!link.connection.closed) this.table.closeLink(link, CloseCode.GOING_AWAY, `handshake failed: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
      })
      .finally(() => {
        link.handshaking = false;
        if (link.session || !link.pending || link.connection.closed) return;
        const queued = link.pending;
        link.pending = undefined;
        for (const frame of queued) this.table.frameArrived(link, frame);
      });
  }

  private async acceptPing(link: Link, ping: PingMessage): Promise<void> {
    // A bridged stream (attachStream) may arrive before the node's keys are loaded.
    await this.ctx.host.ready.catch(() => undefined);
    const identity = await this.checkIdentity(link, ping.peer, ping.clientId);
    if (!identity) return;
    const ours = ping.nonce ? challengeFor(this.ctx.host) : undefined;
    if (!ours && this.refuseDowngrade(link, ping.peer)) return;
    let pong: string;
    try {
      pong = JSON.stringify(await pongMessage(this.ctx.host, ping.id, ours ? { theirs: ping.nonce!, ours } : undefined));
    } catch (err) {
      this.table.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
      return;
    }
    if (link.connection.closed || this.ctx.isClosing()) return;
    if (ours) {
      // No session before the dialer's proof (its next frame) checks: a replayed ping opens nothing.
      link.challenge = { nonce: ours, ping };
      this.sendOn(link, "pong", pong);
      return;
    }
    // The duplicate check, the pong and the session table in one step: another
    // link of the same node finishing its handshake meanwhile (two carriers whose
    // identical pings were checked together) must see this session.
    const session = this.establish(link, ping.peer, ping.isServer, false);
    if (!session) return;
    session.caps = capabilitySet(ping.caps);
    this.sendOn(link, "pong", pong);
    this.table.openSession(link, session);
  }

  /** Incoming links: the dialer signed our nonce with its ping's record. The ack tells it our session is open. */
  private async acceptProof(link: Link, proof: ProofMessage): Promise<void> {
    const { nonce, ping } = link.challenge!;
    const holds = await proofHolds(this.ctx.host, "proof", nonce!, ping!.peer, proof.sig);
    if (link.connection.closed || this.ctx.isClosing()) return;
    if (!holds) return this.refuse(link, BAD_PROOF);
    link.challenge = undefined;
    // As for a legacy ping: the duplicate check, the ack and the session table in one step.
    const session = this.establish(link, ping!.peer, ping!.isServer, true);
    if (!session) return;
    session.caps = capabilitySet(ping!.caps);
    this.sendOn(link, "proofAck", JSON.stringify(proofAckMessage()));
    this.table.openSession(link, session);
  }

  private async acceptPong(link: Link, pong: PongMessage): Promise<void> {
    const identity = pongIdentity(pong);
    if (!identity) return this.refuse(link, NO_IDENTITY);
    const { record } = identity;
    const challenge = link.challenge;
    link.challenge = undefined;
    const proven = challenge?.nonce !== undefined && pong.proof !== undefined;
    // The record's signature and the proof over our nonce are checked together.
    const [known, holds] = await Promise.all([
      this.checkIdentity(link, record, pong.clientId, identity.maxAgeMs),
      proven ? proofHolds(this.ctx.host, "pong", challenge!.nonce!, record, pong.proof!) : Promise.resolve(true),
    ]);
    if (!known || link.connection.closed || this.ctx.isClosing()) return;
    if (!holds) return this.refuse(link, BAD_PROOF);
    if (!proven && this.refuseDowngrade(link, record)) return;
    if (proven && pong.nonce) {
      // Our proof; the session opens on the other side's ack, so it is open there before we send anything.
      try {
        this.sendOn(link, "proof", JSON.stringify(await proofMessage(this.ctx.host, pong.nonce, challenge!.own!)));
      } catch (err) {
        this.table.closeLink(link, CloseCode.GOING_AWAY, `cannot sign handshake: ${errorText(err)}`, ErrorCode.NETWORK_FAILED);
        return;
      }
      if (!link.connection.closed) link.challenge = { pong: { message: pong, record } };
      return;
    }
    this.openPonged(link, pong, record, proven);
  }

  /** Outgoing links: the other side checked our proof and opened its session. */
  private acceptProofAck(link: Link): void {
    const { message, record } = link.challenge!.pong!;
    link.challenge = undefined;
    this.openPonged(link, message, record, true);
  }

  private openPonged(link: Link, pong: PongMessage, record: PeerRecord, proven: boolean): void {
    const session = this.establish(link, record, pong.isServer, proven);
    if (!session) return;
    session.caps = capabilitySet(pong.caps);
    this.table.openSession(link, session);
    this.ctx.host.learnServers(pong.servers, session, "handshake");
  }

  private refuse(link: Link, refusal: GateRefusal): void {
    this.table.closeLink(link, refusal.closeCode, refusal.reason, refusal.code);
  }

  /** A node that proved itself to us before would prove itself again: an unproven handshake in its name is a replay. */
  private refuseDowngrade(link: Link, record: PeerRecord): boolean {
    if (!this.provedBefore.has(record.address)) return false;
    this.refuse(link, DOWNGRADE);
    return true;
  }

  private async checkIdentity(link: Link, record: PeerRecord, clientId: string, maxAgeMs?: number): Promise<boolean> {
    let problem: PeerRecordProblem | null;
    try {
      problem = await this.ctx.host.checkPeerRecord(record, maxAgeMs);
    } catch (err) {
      problem = "signature";
      this.ctx.log("peer record check failed: %s", errorText(err));
    }
    if (link.connection.closed || this.ctx.isClosing()) return false;
    const refusal = identityRefusal(this.ctx.host, problem, record, clientId);
    if (refusal) this.refuse(link, refusal);
    return refusal === null;
  }

  /** Creates the session, resolving duplicate links to the same node (a proven link beats an unproven one). */
  private establish(link: Link, record: PeerRecord, isServer: boolean, proven: boolean): PeerSession | undefined {
    const clientId = clientIdOf(record.address);
    const refusal = this.ctx.guard.verify(link, clientId, isServer);
    if (refusal) {
      this.refuse(link, refusal);
      return undefined;
    }
    const existing = this.table.sessions.get(clientId);
    if (existing && !existing.connection.closed) {
      const keepNew = keepNewLink(this.ctx.host.nodeAddress(), record.address, { outgoing: link.connection.info.outgoing, proven }, existing);
      const drop = (closed: Connection, kept: Connection) => {
        const [k, c] = [kept.info.transport ?? "other", closed.info.transport ?? "other"];
        const reason = `duplicate link to the same node (kept the ${k} link)`;
        this.ctx.events.emit("duplicate", { peer: clientId, kept: k, closed: c, reason, connection: closed });
        closed.close(CloseCode.DUPLICATE, reason);
      };
      if (!keepNew) {
        if (link.target) link.target.address = record.address;
        drop(link.connection, existing.connection);
        return undefined;
      }
      drop(existing.connection, link.connection);
    }
    const session = new PeerSession(link.connection, record.address, clientId, isServer, record, this.ctx.now(), this.ctx.traffic, this.ctx.maxFrameBytes);
    session.proven = proven;
    session.link = link;
    if (proven) this.provedBefore.add(record.address, this.ctx.guard.siteOf(link) ?? `id:${record.address}`);
    return session;
  }
}
