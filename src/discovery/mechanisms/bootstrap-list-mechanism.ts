import type { PeerAddress } from "../peer-table.js";
import type { DiscoveryMechanism, MechanismSink } from "./mechanism.js";

/** A fixed list of server addresses (configuration): all found at once. */
export class BootstrapListMechanism implements DiscoveryMechanism {
  readonly name = "bootstrap-list";
  private sink: MechanismSink | undefined;

  constructor(private readonly peers: readonly PeerAddress[]) {}

  start(sink: MechanismSink): void {
    this.sink = sink;
    for (const peer of this.peers) sink.found(peer);
    sink.roundDone();
  }

  /** A backed-off address is offered again once its penalty is over. */
  forget(peer: PeerAddress): void {
    if (this.peers.some((p) => p.host === peer.host && p.port === peer.port)) this.sink?.found(peer);
  }

  async stop(): Promise<void> {
    this.sink = undefined;
  }
}
