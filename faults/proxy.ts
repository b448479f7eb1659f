import { type AddressInfo, type Server, type Socket, createConnection, createServer } from "node:net";

/** One proxied TCP connection: `down` was accepted, `up` dials the target. */
interface Link {
  readonly down: Socket;
  readonly up: Socket;
  holed: boolean;
}

/**
 * A loopback TCP proxy in front of one server, whose links can be
 * black-holed: forwarding stops in both directions but nothing is closed,
 * as when packets are dropped on the path (TCP flow control then stalls the
 * senders, as retransmissions would). Restoring forwards what was held back.
 * Whether a link survives a black hole is up to the ends (heartbeats).
 */
export class BlackholeProxy {
  private readonly links = new Set<Link>();
  private server: Server | undefined;

  constructor(
    private readonly targetPort: number,
    private readonly host = "127.0.0.1",
  ) {}

  /** Listens on `port` (0 = any) and resolves the port. */
  listen(port = 0): Promise<number> {
    const server = createServer((down) => this.accept(down));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, this.host, () => resolve((server.address() as AddressInfo).port));
    });
  }

  /** Established links that are not black-holed now. */
  get openLinks(): number {
    return [...this.links].filter((l) => !l.holed).length;
  }

  /** Black-holes the `index`-th open link (modulo); returns a function that restores it, or undefined without links. */
  blackhole(index: number): (() => void) | undefined {
    const open = [...this.links].filter((l) => !l.holed);
    if (open.length === 0) return undefined;
    const link = open[index % open.length]!;
    link.holed = true;
    link.down.unpipe(link.up);
    link.up.unpipe(link.down);
    link.down.pause();
    link.up.pause();
    return () => {
      if (!link.holed) return;
      link.holed = false;
      if (link.down.destroyed || link.up.destroyed) return this.drop(link);
      link.down.pipe(link.up);
      link.up.pipe(link.down);
    };
  }

  /** Stops accepting (new dials are refused, as behind a cut path); links already made stay. `listen` again to accept. */
  stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    // It stops accepting at once; its callback would wait for the links made through it to end.
    server?.close();
    return Promise.resolve();
  }

  close(): Promise<void> {
    for (const link of this.links) this.drop(link);
    const server = this.server;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private accept(down: Socket): void {
    const up = createConnection({ host: this.host, port: this.targetPort });
    const link: Link = { down, up, holed: false };
    this.links.add(link);
    const drop = () => this.drop(link);
    for (const socket of [down, up]) {
      socket.on("error", drop);
      socket.on("close", drop);
    }
    down.pipe(up);
    up.pipe(down);
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    link.down.destroy();
    link.up.destroy();
  }
}
