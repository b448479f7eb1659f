/**
 * Relay between servers without flooding: Plumtree (epidemic broadcast
 * trees, Leitão, Pereira and Rodrigues 2007) on the links between proven
 * tooldb-dht servers that listed the `pt1` capability. A changed record is
 * pushed whole on the tree's (eager) links and announced by hash (IHAVE,
 * batched) on the others (lazy). A node that receives a record twice from
 * the same origin tells the second sender to PRUNE their link off the tree;
 * a node that hears an IHAVE and does not get the record in time GRAFTs
 * the link back and gets it. Every link starts eager, so the first puts
 * flood and carve the tree; from then on a put costs about one copy per
 * server. Links with anyone else (tool-db 2.6.6, older tooldb-dht servers,
 * subscribed clients) keep the plain relay (record-intake.ts).
 */
import { TimerGroup, type Clock } from "../../base/clock.js";
import { frameWithRecord } from "../../records/record-frame.js";
import { LruMap } from "../../base/bounded-set.js";
import { randomId } from "../../base/random.js";
import type { ToolDbNetworkAdapter } from "../../network/network-adapter.js";
import type { PeerSession } from "../../network/peer-session.js";
import type { CrdtPutMessage, PutMessage } from "../../records/messages.js";
import { TREE_LIMITS, type TreeHashesMessage, type TreeMessage } from "../../records/tree-messages.js";
import type { ToolDbRecord } from "../../records/record.js";
import { TreeRepair } from "./tree-repair.js";
import { linkWeight } from "./link-weight.js";
import { GraftAnswers, type GraftAnswerDeps, type GraftItem } from "./graft-answer.js";
import { Announcements, ENVELOPE_BYTES, HASH_BYTES } from "./announcements.js";
import { HeldCheck, type HeldCheckDeps } from "./held-check.js";

/** Listed in the handshake by servers that run the broadcast tree. */
export const TREE_CAPABILITY = "pt1";

export interface BroadcastOptions {
  /** "tree": Plumtree between proven servers that support it; "flood": every change to every server link, as tool-db. */
  mode: "tree" | "flood";
  /** IHAVE announcements to a lazy link are batched over this many ms. */
  ihaveInterval: number;
  /** How long an announced record may take to arrive on the tree before the announcer is asked (GRAFT). */
  graftTimeout: number;
  /** Then how long each further announcer gets. */
  graftRetry: number;
  /** Record hashes remembered as received (duplicates, IHAVE, GRAFT answers). */
  remember: number;
}

export const DEFAULT_BROADCAST: BroadcastOptions = { mode: "tree", ihaveInterval: 50, graftTimeout: 400, graftRetry: 200, remember: 16_384 };

/** What the tree knows of a record it received: enough to answer a GRAFT and to tell a cycle from a second origin. */
interface Received {
  key: string;
  id: string;
  /** Client id of the server where the record entered the tree. */
  origin: string;
  /** Tree hops from the origin to this node. */
  round: number;
  /** The heaviest link on the path the first copy took from the origin (0 here at the origin; undefined from a peer that sends no `w`). */
  pathMax: number | undefined;
  /** Client id of the peer that sent the first copy (undefined at the origin). */
  via: string | undefined;
}

/** What the tree uses of its node (ToolDb is one). */
export interface TreeDeps {
  readonly network: ToolDbNetworkAdapter;
  readonly isServer: boolean;
  readonly options: { readonly clock?: Clock; readonly broadcast?: Partial<BroadcastOptions> };
  /** The checked JSON of the record stored under a key, and whether it is a CRDT record (to answer a GRAFT); the record (an IHAVE's check). */
  readonly records: GraftAnswerDeps["records"] & HeldCheckDeps["records"];
  /** The largest frame a peer takes: an IHAVE fits it. */
  readonly frames: { readonly maxFrameBytes: number };
  now(): number;
}

/** Counters for metrics and the simulator. */
export interface TreeStats {
  eagerSent: number;
  ihaveSent: number;
  grafts: number;
  prunes: number;
  duplicates: number;
}

type TreePut = (PutMessage | CrdtPutMessage) & { r?: number; o?: string; w?: number };

export class BroadcastTree {
  readonly options: BroadcastOptions;
  readonly stats: TreeStats = { eagerSent: 0, ihaveSent: 0, grafts: 0, prunes: 0, duplicates: 0 };
  private readonly eager = new Set<PeerSession>();
  private readonly lazy = new Set<PeerSession>();
  private readonly received: LruMap<string, Received>;
  private readonly weights = new WeakMap<PeerSession, number>();
  /** When a PRUNE last went to a link that was already lazy here (one that still pushed copies). */
  private readonly repruned = new WeakMap<PeerSession, number>();
  /** When a neighbour last made this node cut a link other than its own (a hint, or a copy showing a cycle upstream). */
  private readonly hinted = new WeakMap<PeerSession, number>();
  private readonly timers: TimerGroup;
  private readonly repair: TreeRepair;
  private readonly answers: GraftAnswers;
  private readonly announcements: Announcements;
  private readonly held: HeldCheck;
  private closed = false;

  constructor(private readonly deps: TreeDeps) {
    this.options = { ...DEFAULT_BROADCAST, ...deps.options.broadcast };
    this.received = new LruMap(this.options.remember);
    this.timers = new TimerGroup(deps.options.clock);
    this.answers = new GraftAnswers({ timers: this.timers, records: deps.records });
    this.announcements = new Announcements(this.timers, this.options.ihaveInterval, () => deps.frames.maxFrameBytes, () => this.stats.ihaveSent++);
    this.held = new HeldCheck(deps);
    this.repair = new TreeRepair(this.timers, () => this.timers.monotonic(), this.options, this.options.remember, (peer, hashes) => this.graft(peer, hashes));
  }

  private get enabled(): boolean {
    return this.deps.isServer && this.options.mode === "tree" && !this.closed;
  }

  capabilities(): string[] {
    return this.enabled ? [TREE_CAPABILITY] : [];
  }

  /** True for links the tree carries: proven servers that speak it. Everyone else gets the plain relay. */
  carries(session: PeerSession): boolean {
    return this.enabled && session.caps.has(TREE_CAPABILITY) && isProvenServer(session);
  }

  /** Links on the tree now (eager) and beside it (lazy), for status and the simulator. */
  get links(): { eager: number; lazy: number } {
    return { eager: this.eager.size, lazy: this.lazy.size };
  }

  /**
   * A link opened or was proven: every new link starts on the tree
   * (Plumtree's NeighborUp). A carried link that was never pruned is treated
   * as eager wherever it is met, so a proof that comes after the session
   * opened needs no call here.
   */
  linked(session: PeerSession): void {
    if (!this.carries(session) || this.lazy.has(session)) return;
    this.eager.add(session);
  }

  unlinked(session: PeerSession): void {
    this.eager.delete(session);
    this.lazy.delete(session);
    this.announcements.drop(session);
    this.repair.unlinked(session);
  }

  /**
   * A put arrived on a link (before its checks). The tree notes the record
   * as received, so that an IHAVE for it starts no repair; a second copy of
   * a record from the same origin means a cycle, and its sender is told to
   * PRUNE. Dropping duplicates before verification is not done here: the
   * node's duplicate check (message ids, stored or in-flight hashes) does it.
   */
  arrived(message: TreePut, from: PeerSession): void {
    if (!this.carries(from)) return;
    const hash = hashOf(message.data);
    if (hash === undefined) return;
    const known = this.received.get(hash);
    if (known) {
      this.duplicate(known, message, from);
      return;
    }
    const key = (message.data as { k?: unknown }).k;
    if (typeof key !== "string") return;
    const origin = typeof message.o === "string" ? message.o : from.clientId;
    const round = typeof message.r === "number" ? message.r : 1;
    const pathMax = typeof message.w === "number" ? Math.max(message.w, this.weight(from)) : undefined;
    this.received.set(hash, { key, id: message.id, origin, round, pathMax, via: from.clientId });
    this.repair.arrived(hash);
  }

  /** A copy dropped before this check (its message id was seen): still a duplicate for the tree. */
  duplicateId(message: TreePut, from: PeerSession): void {
    if (!this.carries(from)) return;
    const hash = hashOf(message.data);
    const known = hash === undefined ? undefined : this.received.get(hash);
    if (known) this.duplicate(known, message, from);
  }

  private duplicate(known: Received, message: TreePut, from: PeerSession): void {
    this.stats.duplicates++;
    // Only a tree put from the same origin shows a cycle: the same record entering at two
    // servers (a client writes to two) is none, nor a reply to a get.
    if (typeof message.o !== "string" || message.o !== known.origin) return;
    if (this.lazy.has(from)) {
      // The peer still pushes on a link that is off the tree here (its end missed a PRUNE that crossed a GRAFT).
      const last = this.repruned.get(from);
      if (last !== undefined && this.deps.now() - last < this.options.graftTimeout) return;
      this.repruned.set(from, this.deps.now());
      from.send({ type: "prune", id: randomId() });
      return;
    }
    this.cutCycle(known, message, from);
  }

  /**
   * Cuts the cycle that a second copy revealed at its heaviest link (the
   * cycle rule of a minimum spanning tree), which every overlapping
   * broadcast agrees on. The cycle is the two paths the copies took from the
   * origin, after the part they share; each copy carries the heaviest link of
   * its path (`w`), so the heavier of the two maxima is on the cycle. That
   * link is cut here if it ends here, else a prune hint walks back to it. A
   * copy without `w` (a server before this rule) is cut where it arrived, as
   * Plumtree does.
   */
  private cutCycle(known: Received, message: TreePut, from: PeerSession): void {
    const hash = hashOf(message.data);
    if (typeof message.w !== "number" || known.pathMax === undefined || hash === undefined) {
      if (this.eager.delete(from)) this.prune(from);
      return;
    }
    const fromWeight = this.weight(from);
    const second = Math.max(message.w, fromWeight);
    if (second === fromWeight && second > known.pathMax) {
      if (this.eager.delete(from)) this.prune(from);
    } else if (second > known.pathMax) {
      from.send({ type: "prune", id: randomId(), w: second, h: hash });
    } else if (known.pathMax > second) {
      if (this.mayCutFor(from)) this.cutOnPath(hash, known.pathMax);
    }
    // Equal: the heaviest link is on the part both paths share, not on the cycle.
  }

  /**
   * A prune hint: the heaviest link (weight `w`) of a cycle lies on the path
   * by which `hash` came here. Cut it if it is the link it came on, else pass
   * the hint to that link's sender (the path is walked back to that link).
   */
  private cutOnPath(hash: string, w: number): void {
    const entry = this.received.get(hash);
    if (!entry || entry.pathMax !== w || entry.via === undefined) return;
    const via = this.deps.network.session(entry.via);
    if (!via || !this.carries(via)) return;
    if (this.weight(via) !== w) {
      via.send({ type: "prune", id: randomId(), w, h: hash });
      return;
    }
    if (this.eager.delete(via)) this.prune(via);
  }

  private prune(peer: PeerSession): void {
    this.lazy.add(peer);
    this.stats.prunes++;
    peer.send({ type: "prune", id: randomId() });
  }

  /**
   * A neighbour makes this node cut a link other than its own at most once
   * per `graftTimeout`: nothing proves its hint (or the copy it echoed) true,
   * and a lying tree neighbour could otherwise cut honest links far from it
   * again and again (found in review). An honest hint held back leaves a
   * cycle a little longer: its next duplicate cuts it.
   */
  private mayCutFor(from: PeerSession): boolean {
    const now = this.deps.now();
    const last = this.hinted.get(from);
    if (last !== undefined && now - last < this.options.graftTimeout) return false;
    this.hinted.set(from, now);
    return true;
  }

  private weight(peer: PeerSession): number {
    let w = this.weights.get(peer);
    if (w === undefined) this.weights.set(peer, (w = linkWeight(this.deps.network.getClientAddress(), peer.clientId)));
    return w;
  }

  /** A put that failed verification: forget it, so that a good copy is not taken for a duplicate. */
  refused(data: unknown): void {
    const hash = hashOf(data);
    if (hash !== undefined) this.received.delete(hash);
  }

  /**
   * A record changed the store: push it on the tree and announce it beside
   * it. `from` is where it came from (not sent back); `lazyOnly` for records
   * learned by anti-entropy, which most servers already hold; `skip`: links not
   * sent or announced to (a store copy's records, RecordIntake.relay).
   */
  relay(record: ToolDbRecord, id: string, from: PeerSession | undefined, lazyOnly = false, ack = false, json?: string, skip?: (session: PeerSession) => boolean): void {
    if (!this.enabled) return;
    this.repair.arrived(record.h);
    const links: PeerSession[] = [];
    for (const session of this.deps.network.serverPeers) if (session !== from && this.carries(session) && !skip?.(session)) links.push(session);
    // Nobody to push to, announce to or answer a GRAFT from (e.g. a catch-up from the only server linked): nothing to remember.
    if (links.length === 0) return;
    let entry = this.received.get(record.h);
    if (!entry || !from || !this.carries(from)) {
      entry = { key: record.k, id, origin: this.deps.network.getClientAddress(), round: 0, pathMax: 0, via: undefined };
      this.received.set(record.h, entry);
    }
    let frame: string | undefined;
    let sent = 0;
    // Every carried link not pruned is on the tree, including links proven after they opened.
    for (const session of links) {
      if (lazyOnly || this.lazy.has(session)) {
        this.announcements.add(session, record.h, record.k);
        continue;
      }
      this.eager.add(session);
      frame ??= this.frame(record, entry, ack, json);
      session.sendRaw(frame);
      sent++;
    }
    this.stats.eagerSent += sent;
    // Counted by type as every other send is (metrics: tooldb_messages_sent_total).
    if (sent > 0) this.deps.network.traffic.out(record.c === null ? "put" : "crdtPut", sent);
  }

  /** `json`: the record as stored, spliced in instead of serialised again. */
  private frame(record: ToolDbRecord, entry: Received, ack: boolean, json?: string): string {
    const fields = { type: record.c === null ? "put" : "crdtPut", ...this.treeFields(entry, ack) };
    return json === undefined ? JSON.stringify({ ...fields, data: record }) : frameWithRecord(fields, json);
  }

  /** A tree frame's fields but its type (the record's: a put, or a crdtPut for a CRDT record). */
  private treeFields(entry: Received, ack: boolean): GraftItem["fields"] {
    const path = entry.pathMax === undefined ? {} : { w: entry.pathMax };
    return { id: entry.id, to: [this.deps.network.getClientAddress()], r: entry.round + 1, o: entry.origin, ...path, ...(ack ? { ack: true } : {}) };
  }

  /** An IHAVE: the hashes neither received lately (also while the keys were looked up) nor held under the keys it names start a repair. */
  private async heard(message: TreeHashesMessage, from: PeerSession): Promise<void> {
    const received = (hash: string) => this.received.get(hash) !== undefined;
    const unheld = await this.held.unheld(from, message.hs, message.ks, received);
    if (this.closed || from.connection.closed) return;
    for (const hash of unheld) if (!received(hash)) this.repair.announced(hash, from);
  }

  /** IHAVE, GRAFT and PRUNE from a peer. */
  handle(message: TreeMessage, from: PeerSession): void | Promise<void> {
    if (!this.carries(from)) return;
    switch (message.type) {
      case "ihave":
        return this.heard(message, from);
      case "prune":
        if (message.w !== undefined && message.h !== undefined && message.w !== this.weight(from)) return this.mayCutFor(from) ? this.cutOnPath(message.h, message.w) : undefined;
        if (this.eager.delete(from)) this.lazy.add(from);
        return;
      case "graft":
        this.lazy.delete(from);
        this.eager.add(from);
        return this.answerGraft(message.hs, from);
    }
  }

  private graft(peer: PeerSession, hashes: string[]): void {
    if (this.closed || peer.connection.closed) return;
    this.lazy.delete(peer);
    this.eager.add(peer);
    this.stats.grafts++;
    // As many as a frame holds (a graft of 1,024 hashes is 69 KB: over a 64 KiB frame limit it was never sent).
    const perFrame = Math.max(1, Math.min(TREE_LIMITS.maxHashes, Math.floor((this.deps.frames.maxFrameBytes - ENVELOPE_BYTES) / HASH_BYTES)));
    for (let i = 0; i < hashes.length; i += perFrame) peer.send({ type: "graft", id: randomId(), hs: hashes.slice(i, i + perFrame) });
  }

  /**
   * Sends the grafting peer the records it asked for that this node still
   * holds, each key once (what wins here now, in a frame of its type: a newer
   * record under a key supersedes the one asked for), as gets are answered.
   */
  private async answerGraft(hashes: readonly string[], to: PeerSession): Promise<void> {
    const items = new Map<string, GraftItem>();
    for (const hash of hashes) {
      const entry = this.received.get(hash);
      if (entry && !items.has(entry.key)) items.set(entry.key, { key: entry.key, fields: this.treeFields(entry, false) });
    }
    if (items.size === 0) return;
    const sent = await this.answers.answer([...items.values()], to); // `eagerSent += await` lost what others added meanwhile
    this.stats.eagerSent += sent;
  }

  close(): void {
    this.closed = true;
    this.answers.close();
    this.timers.clearAll();
    this.repair.close();
    this.eager.clear();
    this.lazy.clear();
    this.announcements.clear();
  }
}

function hashOf(data: unknown): string | undefined {
  const h = (data as { h?: unknown } | null)?.h;
  return typeof h === "string" ? h : undefined;
}

/** Lane identity's `provenServer` (a server that signed this session's nonce); `isServer` where it is absent. */
function isProvenServer(session: PeerSession): boolean {
  const proven = (session as { provenServer?: boolean }).provenServer;
  return proven ?? session.isServer;
}
