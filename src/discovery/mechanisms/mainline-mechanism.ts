import type { Discovery } from "../discovery.js";
import type { PeerAddress } from "../peer-table.js";
import type { DiscoveryMechanism, MechanismSink } from "./mechanism.js";

/**
 * The BitTorrent mainline DHT (today's Discovery): joins the topic
 * (announcing `port` for servers); its first lookup round ends the round.
 * Owns the Discovery: stop() leaves and destroys it.
 */
export class MainlineMechanism implements DiscoveryMechanism {
  readonly name = "mainline";
  private sink: MechanismSink | undefined;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly onPeer = (id: unknown, peer: PeerAddress) => id === this.topic && this.sink?.found(peer);
  private roundReported = false;
  private readonly onLookup = (id: unknown) => {
    if (id !== this.topic || this.roundReported || !this.sink) return;
    this.roundReported = true;
    this.sink.roundDone();
  };

  constructor(
    readonly discovery: Discovery,
    private readonly topic: string,
    private readonly port: number | undefined,
  ) {}

  start(sink: MechanismSink): void {
    if (this.stopped) return;
    this.sink = sink;
    this.discovery.on("peer", this.onPeer);
    this.discovery.on("lookup", this.onLookup);
    this.discovery.join(this.topic, this.port);
  }

  refresh(): void {
    if (!this.stopped) this.discovery.refresh(this.topic);
  }

  forget(peer: PeerAddress): void {
    if (!this.stopped) this.discovery.forget(this.topic, peer.host, peer.port);
  }

  /** Idempotent: every call resolves once the Discovery is destroyed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    this.discovery.off("peer", this.onPeer);
    this.discovery.off("lookup", this.onLookup);
    this.discovery.leave(this.topic);
    await this.discovery.destroy();
  }
}
