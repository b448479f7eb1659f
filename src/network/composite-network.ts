import { ErrorCode, ToolDbError } from "../base/errors.js";
import type { Connection } from "./connection.js";
import { type NetworkAdapterConstructor, ToolDbNetworkAdapter } from "./network-adapter.js";
import type { NetworkHost } from "./network-host.js";

/**
 * Several transports under one node: one handshake, one session table, so a
 * peer reachable over two carriers keeps one link (the duplicate closes with
 * "kept the <transport> link"), and a server relays between clients on any.
 * Each child transport still owns its sockets (listening, dialing, closing);
 * its links are handed to this adapter. `connectTo(host, port)` dials through
 * the first child that dials addresses.
 */
export class CompositeNetwork extends ToolDbNetworkAdapter {
  readonly transports: readonly ToolDbNetworkAdapter[];

  constructor(host: NetworkHost, adapters: readonly NetworkAdapterConstructor[]) {
    super(host, "network");
    if (adapters.length === 0) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "networkAdapter: the list of transports is empty");
    this.transports = adapters.map((Adapter) => new Adapter(host));
    for (const transport of this.transports) transport.deliverLinksTo(this);
  }

  /** The first transport of class `Adapter`, e.g. `db.network.transport(HyperswarmNetwork)`. */
  transport<T extends ToolDbNetworkAdapter>(Adapter: abstract new (...args: never[]) => T): T | undefined {
    return this.transports.find((t): t is T => t instanceof Adapter);
  }

  /** The listening port of the first transport that has one (the WebSocket server's, typically). */
  override get port(): number | undefined {
    for (const t of this.transports) {
      const port = t.port;
      if (port) return port;
    }
    return undefined;
  }

  /** Every transport closes at once, each waiting for its own start: one whose listen never ends keeps no other's socket open. */
  override close(): Promise<void> {
    const closing = super.close();
    for (const transport of this.transports) void transport.close().catch(() => undefined); // its failure surfaces in _close
    return closing;
  }

  override get canDial(): boolean {
    return this.transports.some((t) => t.canDial && !t.isClosed);
  }

  protected dial(host: string, port: number): Connection {
    const dialer = this.transports.find((t) => t.canDial && !t.isClosed);
    if (!dialer) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, "no open transport of this node dials addresses");
    return dialer.openConnection(host, port);
  }

  protected async listen(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.start()));
  }

  protected async _close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

/** `networkAdapter: [A, B]` as one adapter class. */
export function combineNetworks(...adapters: NetworkAdapterConstructor[]): NetworkAdapterConstructor {
  if (adapters.length === 1) return adapters[0]!;
  return class extends CompositeNetwork {
    constructor(host: NetworkHost) {
      super(host, adapters);
    }
  };
}

/** What ToolDb does with its `networkAdapter` option: one class, or a list run as one. */
export function createNetwork(adapter: NetworkAdapterConstructor | readonly NetworkAdapterConstructor[], host: NetworkHost): ToolDbNetworkAdapter {
  const Adapter = isList(adapter) ? combineNetworks(...adapter) : adapter;
  return new Adapter(host);
}

function isList(a: NetworkAdapterConstructor | readonly NetworkAdapterConstructor[]): a is readonly NetworkAdapterConstructor[] {
  return Array.isArray(a);
}
