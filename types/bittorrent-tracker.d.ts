/**
 * Minimal typing for bittorrent-tracker 11 (ESM, no bundled types): the
 * WebSocket-tracker client and the server. Only what this project uses.
 */
declare module "bittorrent-tracker/client" {
  import { EventEmitter } from "node:events";

  /** A @thaunknown/simple-peer instance (a streamx Duplex over one RTCDataChannel). */
  export interface TrackerPeer extends EventEmitter {
    readonly initiator: boolean;
    readonly connected: boolean;
    readonly destroyed: boolean;
    id?: string;
    remoteAddress?: string;
    remotePort?: number;
    send(data: Uint8Array | string): void;
    destroy(err?: Error): void;
    on(event: "connect" | "close" | "disconnect", listener: () => void): this;
    on(event: "data", listener: (chunk: Uint8Array) => void): this;
    on(event: "error", listener: (err: Error & { code?: string }) => void): this;
    once(event: "connect" | "close" | "disconnect", listener: () => void): this;
  }

  export interface ClientOptions {
    infoHash: string | Uint8Array;
    peerId: string | Uint8Array;
    announce: string[];
    /** Required in Node (unused by WebSocket trackers). */
    port?: number;
    rtcConfig?: object;
    getAnnounceOpts?: () => Record<string, unknown>;
  }

  export default class Client extends EventEmitter {
    constructor(opts: ClientOptions);
    readonly destroyed: boolean;
    start(opts?: Record<string, unknown>): void;
    stop(opts?: Record<string, unknown>): void;
    update(opts?: Record<string, unknown>): void;
    destroy(cb?: (err: Error | null) => void): void;
    on(event: "peer", listener: (peer: TrackerPeer) => void): this;
    on(event: "warning" | "error", listener: (err: Error) => void): this;
    /** A tracker's answer to an announce: its URL and the peers it counts in the swarm. */
    on(event: "update", listener: (data: { announce: string; complete: number; incomplete: number }) => void): this;
  }
}

declare module "bittorrent-tracker/server" {
  import { EventEmitter } from "node:events";
  import type { Server as HttpServer } from "node:http";

  export interface ServerOptions {
    http?: boolean;
    udp?: boolean;
    ws?: boolean;
    stats?: boolean;
    trustProxy?: boolean;
    /** ms between announces the tracker asks for. */
    interval?: number;
  }

  export default class Server extends EventEmitter {
    constructor(opts?: ServerOptions);
    readonly http: HttpServer | null;
    readonly ws: { clients: Set<unknown> } | null;
    readonly torrents: Record<string, { peers: { length: number } } | undefined>;
    listen(port: number, hostname: string, cb?: () => void): void;
    close(cb?: (err?: Error | null) => void): void;
  }
}
