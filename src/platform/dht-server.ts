import type { ToolDb } from "../node/tooldb.js";
import { DhtNode, type DhtNodeOptions } from "./dht-node.js";
import { DEFAULT_MIN_SERVER_LINKS } from "../peering/server-mesh.js";

/**
 * A ToolDb server that announces `topic -> port` on the mainline DHT and
 * links up with the other servers it finds there, as in the ToolDb guide's
 * complete example: `new DHTServer(topic, host, port, options)`, `start()`, `stop()`.
 */
export class DHTServer extends DhtNode {
  constructor(topic: string, host: string, port: number, options: DhtNodeOptions = {}) {
    super(topic, options, { server: true, host, port }, "discovery:server");
  }

  /** The WebSocket port actually listened on (after start; useful with port 0). */
  get port(): number {
    return this.db.network.port ?? this.db.options.port;
  }

  get host(): string {
    return this.db.options.host;
  }

  protected announcePort(): number {
    return this.port;
  }

  protected defaultMaxConnections(): number {
    return DEFAULT_MIN_SERVER_LINKS;
  }
}

/**
 * A ToolDb client that looks the topic up without announcing, connects to
 * the servers it finds, fails over when one dies and picks up new ones.
 */
export class DHTClient extends DhtNode {
  constructor(topic: string, options: DhtNodeOptions & { host?: string } = {}) {
    // `options?.`: a null is refused by DhtNode's check (INVALID_ARGUMENT), not a TypeError here.
    super(topic, options, { server: false, ...(options?.host ? { host: options.host } : {}) }, "discovery:client");
  }

  protected announcePort(): undefined {
    return undefined;
  }

  /** A client's DHT socket listens on every interface unless `dhtHost` says otherwise. */
  protected override bindHost(): string {
    return "0.0.0.0";
  }

  protected defaultMaxConnections(): number {
    return 2;
  }
}

export type { ToolDb };
