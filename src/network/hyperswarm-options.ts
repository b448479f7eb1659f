/// <reference path="../../types/hyperswarm.d.ts" preserve="true" />
/** HyperswarmNetwork's options, and their checks (hyperswarm-network.ts). */
import type HyperDHT from "hyperdht";
import type { HyperDhtNodeAddress, KeyPair } from "hyperdht";
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { toAddress } from "./hyperswarm-bootstrap.js";

export interface HyperswarmNetworkOptions {
  /** HyperDHT bootstrap nodes ("host:port" or {host, port}). Default: TOOLDB_HYPERDHT_BOOTSTRAP, else hyperdht's public nodes. */
  bootstrap?: Array<string | HyperDhtNodeAddress>;
  /** UDP bind address of the HyperDHT node (default: 127.0.0.1 for a loopback bootstrap, else all interfaces). */
  dhtHost?: string;
  /** An existing HyperDHT node to run the swarm on; the swarm destroys it on close. */
  dht?: HyperDHT;
  /** The swarm's Noise key pair (default: a fresh one). Not the ToolDb identity. */
  keyPair?: KeyPair;
  /** Announce the topic (accept connections). Default: the node's `server` option. */
  announce?: boolean;
  /**
   * Hyperswarm looks a topic up once, then every ~10 minutes: a server that
   * announced a moment later stays unseen. The topic is looked up again after
   * `refreshInterval` ms (default 1000), doubling up to `maxRefreshInterval`
   * (default 60000), and again at once (at most once per refreshInterval)
   * when a link is lost.
   */
  refreshInterval?: number;
  maxRefreshInterval?: number;
  /**
   * How long close() lets hyperswarm leave gracefully (unannounce the topic,
   * let a lookup or announce in flight end) before it destroys the HyperDHT
   * node outright (`destroy({ force: true })`), in ms. Default 500: a DHT
   * that does not answer (offline, dead bootstrap) held close for 3-22 s.
   */
  closeTimeout?: number;
  /**
   * How long a swarm link this node closes waits for the peer to end its side
   * before it is destroyed, in ms (default 1000). Until then hyperswarm
   * counts it among its links: a client at its `maxPeers` whose rotated-out
   * peer never ends its side dials the next candidate only this much later.
   */
  closeLinger?: number;
  /** Most swarm links at once, hyperswarm's `maxPeers` (default 64). */
  maxPeers?: number;
  /**
   * ms per swarm slot rotation of a client that does not announce the topic
   * (default 60000; 0 or Infinity: never): while its `maxPeers` slots are
   * full, a link held a whole interval whose peer delivered no record this
   * node asked for within `meritWindow` is replaced (see `replaceTimeout`),
   * its peer not dialed for 10 rotations (swarm-slots.ts).
   */
  rotateInterval?: number;
  /**
   * A rotation is make before break: the swarm may dial one link over
   * `maxPeers` (a peer the rotation picks, the fewest dials first:
   * swarm-pick.ts), and the link rotated out is closed only once a link
   * dialed since is up as a server. With none within `replaceTimeout` ms
   * (default 30000) the rotation is abandoned and the old link kept; a
   * candidate given up on is not dialed for 10 rotations.
   */
  replaceTimeout?: number;
  /** A peer that delivered a record this node asked for within this many ms keeps its swarm slot (default 600000). */
  meritWindow?: number;
  /**
   * A client that does not announce the topic keeps a peer it dialed away
   * for a while when its link closes for a handshake not finished in time or
   * requests left unanswered (swarm-shuns.ts): `shunMs` (default 4000) the
   * first time, doubling per offence within `shunForgiveMs` (default 600000)
   * of the last, up to `maxShunMs` (default 60000). A peer that says it is
   * no server is kept away `maxShunMs` at once.
   */
  shunMs?: number;
  maxShunMs?: number;
  shunForgiveMs?: number;
}

/** A bad bootstrap entry or bound throws INVALID_ARGUMENT. */
export function checkHyperswarmOptions(options: HyperswarmNetworkOptions): void {
    options.bootstrap?.forEach(toAddress);
    const bound = options.closeTimeout;
    if (bound !== undefined && !(typeof bound === "number" && Number.isFinite(bound) && bound >= 0)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `closeTimeout must be a finite number of ms >= 0, got ${describeValue(bound)}`);
    }
    const peers = options.maxPeers;
    if (peers !== undefined && !(Number.isInteger(peers) && peers >= 1)) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `maxPeers must be an integer >= 1, got ${describeValue(peers)}`);
    }
    // 0 (off, for rotateInterval) up to a timer's range; Infinity also means off.
    for (const [name, value] of [["rotateInterval", options.rotateInterval], ["meritWindow", options.meritWindow]] as const) {
      if (value !== undefined && !(typeof value === "number" && value >= 0 && (value <= 2 ** 31 - 1 || value === Infinity))) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${name} must be a number of ms from 0 to 2147483647 or Infinity, got ${describeValue(value)}`);
      }
    }
    // Timer lengths: past a timer's range Node fires after 1 ms.
    for (const [name, value] of [["shunMs", options.shunMs], ["maxShunMs", options.maxShunMs], ["shunForgiveMs", options.shunForgiveMs], ["replaceTimeout", options.replaceTimeout], ["closeLinger", options.closeLinger]] as const) {
      if (value !== undefined && !(typeof value === "number" && value >= 0 && value <= 2 ** 31 - 1)) {
        throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${name} must be a number of ms from 0 to 2147483647, got ${describeValue(value)}`);
      }
    }
}
