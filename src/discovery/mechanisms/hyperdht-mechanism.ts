import type { HyperswarmNetwork } from "../../network/hyperswarm-network.js";
import type { DiscoveryMechanism, MechanismSink } from "./mechanism.js";

/**
 * HyperDHT, through the Hyperswarm transport: the swarm both finds and
 * connects, so there are no addresses to report; the round ends when the
 * topic is announced (servers) or first looked up (clients). `refresh`
 * looks the topic up again.
 */
export class HyperdhtMechanism implements DiscoveryMechanism {
  readonly name = "hyperdht";
  private stopped = false;

  constructor(private readonly network: HyperswarmNetwork) {}

  async start(sink: MechanismSink): Promise<void> {
    await this.network.start();
    await this.network.joined;
    if (!this.stopped) sink.roundDone();
  }

  refresh(): void {
    if (!this.stopped) this.network.refresh();
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }
}
