import { Announcer, type AnnouncerConfig } from "./announcer.js";
import type { Topic } from "./info-hash.js";
import { LookupLoop, type LookupLoopConfig } from "./lookup-loop.js";
import { PeerTable, type PeerAddress } from "./peer-table.js";

export type DoneCallback = (err: Error | null) => void;

export interface TopicSessionConfig {
  lookup: Omit<LookupLoopConfig, "isSatisfied" | "beforeLookup" | "onResult">;
  announce: Omit<AnnouncerConfig, "onResult">;
  peerTtl: number;
  maxPeers: number;
  onLookup(session: TopicSession, err: Error | null, nodes: number): void;
  onAnnounce(session: TopicSession, port: number, err: Error | null, nodes: number): void;
}

/**
 * Everything joined under one info hash: the lookup loop, one announcer per
 * announced port, and the table of peers already reported.
 */
export class TopicSession {
  /** Joined without a port (listed as port 0, like discovery-channel). */
  lookupOnly = false;
  want: number;
  readonly peers: PeerTable;
  private readonly announcers = new Map<number, Announcer>();
  private readonly loop: LookupLoop;
  /** Set by refresh(): stay at the fast pace until a new peer turns up. */
  private boosted = false;
  private running = false;
  private lookupWaiters: DoneCallback[] = [];
  private readonly announceWaiters = new Map<number, DoneCallback[]>();

  constructor(
    readonly id: Topic,
    readonly infoHash: Buffer,
    want: number,
    private readonly cfg: TopicSessionConfig,
  ) {
    this.want = want;
    this.peers = new PeerTable(cfg.peerTtl, cfg.maxPeers);
    this.loop = new LookupLoop(infoHash, {
      ...cfg.lookup,
      isSatisfied: () => this.isSatisfied(),
      beforeLookup: () => this.peers.expire(cfg.lookup.clock.now()),
      onResult: (err, nodes) => {
        const waiters = this.lookupWaiters;
        this.lookupWaiters = [];
        for (const cb of waiters) cb(err);
        cfg.onLookup(this, err, nodes);
      },
    });
  }

  get ports(): number[] {
    return [...this.announcers.keys()];
  }

  hasPort(port: number): boolean {
    return this.announcers.has(port);
  }

  isSatisfied(): boolean {
    return !this.boosted && this.peers.size >= this.want;
  }

  /** Starts lookups (and announces already added). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop.start();
    for (const a of this.announcers.values()) a.start();
  }

  addPort(port: number, cb?: DoneCallback): void {
    if (cb) this.announceWaiters.set(port, [...(this.announceWaiters.get(port) ?? []), cb]);
    if (this.announcers.has(port)) return;
    const announcer = new Announcer(this.infoHash, port, {
      ...this.cfg.announce,
      onResult: (err, nodes) => {
        const waiters = this.announceWaiters.get(port) ?? [];
        this.announceWaiters.delete(port);
        for (const w of waiters) w(err);
        this.cfg.onAnnounce(this, port, err, nodes);
      },
    });
    this.announcers.set(port, announcer);
    if (this.running) announcer.start();
  }

  removePort(port: number): boolean {
    const a = this.announcers.get(port);
    if (!a) return false;
    a.stop();
    this.announcers.delete(port);
    this.announceWaiters.delete(port);
    return true;
  }

  whenLookedUp(cb: DoneCallback): void {
    this.lookupWaiters.push(cb);
  }

  /**
   * A peer was seen; returns true when it is new and should be reported.
   * `self` marks our own announce, which never counts toward `want`.
   */
  see(peer: PeerAddress, now: number, self: boolean): boolean {
    const isNew = this.peers.see(peer, now, self);
    if (isNew && !self) this.boosted = false;
    return isNew;
  }

  forget(host: string, port: number): boolean {
    const known = this.peers.forget(host, port);
    if (known && !this.isSatisfied()) this.loop.hurry();
    return known;
  }

  refresh(): void {
    this.boosted = true;
    this.loop.refresh();
  }

  /** Stops every timer; pending join callbacks get `reason`. */
  stop(reason: Error): void {
    this.running = false;
    this.loop.stop();
    for (const a of this.announcers.values()) a.stop();
    const waiters = [...this.lookupWaiters, ...[...this.announceWaiters.values()].flat()];
    this.lookupWaiters = [];
    this.announceWaiters.clear();
    for (const cb of waiters) cb(reason);
  }
}
