import { createLogger } from "../../base/logger.js";
import { errorText } from "../../base/errors.js";
import { TypedEmitter } from "../../base/typed-emitter.js";
import { dialKey } from "../../network/dial-target.js";
import type { PeerAddress } from "../peer-table.js";
import type { DiscoveryMechanism } from "./mechanism.js";

const log = createLogger("discovery:merged");
/** Addresses remembered per topic (memory bound under a flood of candidates). */
const MAX_CANDIDATES = 4096;

export type MergedDiscoveryEvents = {
  /** A new candidate address (de-duplicated by host:port across mechanisms); `source` names who found it first. */
  peer: [topic: string, peer: PeerAddress, source: string];
  /** Every mechanism has finished its first round. */
  settled: [];
  /** A mechanism could not start (a damaged peer cache, no multicast route); the others go on without it. */
  "mechanism-failed": [mechanism: string, error: unknown];
};

/**
 * Every discovery mechanism at once, merged: candidates are de-duplicated
 * by address here and, after the signed handshake, by identity in the
 * network layer (one link per node). `settled` fires once every mechanism
 * did its first round. The surface DhtPeering uses (`peer` events, peers,
 * refresh, forget) is the same as the mainline Discovery's.
 */
export class MergedDiscovery extends TypedEmitter<MergedDiscoveryEvents> {
  private readonly candidates = new Map<string, { peer: PeerAddress; source: string }>();
  private readonly pendingRounds = new Set<string>();
  private startPromise: Promise<void> | undefined;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private settledFlag = false;

  constructor(
    readonly topic: string,
    readonly mechanisms: readonly DiscoveryMechanism[],
  ) {
    super();
  }

  get settled(): boolean {
    return this.settledFlag;
  }

  /** Resolves once every mechanism did its first round (at once if that already happened). */
  whenSettled(): Promise<void> {
    return this.settledFlag ? Promise.resolve() : new Promise((resolve) => this.once("settled", () => resolve()));
  }

  /** Resolves when every mechanism has been started (not when they settle). */
  start(): Promise<void> {
    this.startPromise ??= this.doStart();
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    for (const m of this.mechanisms) this.pendingRounds.add(m.name);
    if (this.mechanisms.length === 0) this.settle();
    await Promise.all(
      this.mechanisms.map(async (m) => {
        let done = false;
        try {
          await m.start({
            found: (peer) => this.found(m.name, peer),
            roundDone: () => {
              if (done) return;
              done = true;
              this.roundDone(m.name);
            },
          });
        } catch (err) {
          // A mechanism that cannot start (no multicast route, say) must not hold `settled` back.
          log("%s failed to start: %s", m.name, errorText(err));
          this.emit("mechanism-failed", m.name, err);
          this.roundDone(m.name);
        }
      }),
    );
  }

  private found(source: string, peer: PeerAddress): void {
    if (this.stopped) return;
    const key = dialKey(peer.host, peer.port);
    if (this.candidates.has(key) || this.candidates.size >= MAX_CANDIDATES) return;
    this.candidates.set(key, { peer: { host: peer.host, port: peer.port }, source });
    log("%s found %s", source, key);
    this.emit("peer", this.topic, { host: peer.host, port: peer.port }, source);
  }

  private roundDone(name: string): void {
    if (this.stopped || !this.pendingRounds.delete(name)) return;
    log("%s did its first round", name);
    if (this.pendingRounds.size === 0) this.settle();
  }

  private settle(): void {
    if (this.settledFlag) return;
    this.settledFlag = true;
    this.emit("settled");
  }

  /** Candidates so far, in the order they were found (the peer cache starts first). */
  peers(topic: string = this.topic): PeerAddress[] {
    return topic === this.topic ? [...this.candidates.values()].map((c) => c.peer) : [];
  }

  /** Who found each candidate first. */
  sources(): Array<PeerAddress & { source: string }> {
    return [...this.candidates.values()].map((c) => ({ ...c.peer, source: c.source }));
  }

  refresh(topic: string = this.topic): boolean {
    if (this.stopped || topic !== this.topic) return false;
    for (const m of this.mechanisms) m.refresh?.();
    return true;
  }

  forget(topic: string, host: string, port: number): boolean {
    if (topic !== this.topic) return false;
    const had = this.candidates.delete(dialKey(host, port));
    for (const m of this.mechanisms) m.forget?.({ host, port });
    return had;
  }

  /** Idempotent (every call resolves once every mechanism stopped): stops every mechanism; no event afterwards. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.silence();
    await this.startPromise?.catch(() => undefined);
    await Promise.all(this.mechanisms.map((m) => m.stop().catch((err) => log("%s stop failed: %s", m.name, errorText(err)))));
  }
}
