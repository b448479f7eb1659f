import type { PeerAddress } from "../peer-table.js";

/** Where a mechanism reports to. */
export interface MechanismSink {
  /** A candidate server address (not trusted: the signed handshake decides). */
  found(peer: PeerAddress): void;
  /** The first round is complete (called once; later calls are ignored). */
  roundDone(): void;
}

/**
 * One way of finding servers of a topic: the mainline DHT, HyperDHT, the
 * LAN, a fixed list, the peer cache. Implementations run
 * test/compliance/discovery-suite against themselves.
 */
export interface DiscoveryMechanism {
  /** Short name, reported with each candidate ("mainline", "lan", ...). */
  readonly name: string;
  /** Begins finding; candidates and the first round's end go to `sink`. */
  start(sink: MechanismSink): void | Promise<void>;
  /** Look again soon (a link dropped, a candidate failed). Optional. */
  refresh?(): void;
  /** Report `peer` again if it is found again (it was backed off). Optional. */
  forget?(peer: PeerAddress): void;
  /** Idempotent; nothing reaches the sink afterwards. */
  stop(): Promise<void>;
}
