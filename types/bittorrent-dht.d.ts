/**
 * Minimal typing for bittorrent-dht 11 (ESM, ships no types). Only the parts
 * this project uses; see node_modules/bittorrent-dht/client.js for the rest.
 */
declare module "bittorrent-dht" {
  import { EventEmitter } from "node:events";
  import type { AddressInfo } from "node:net";

  export interface DhtPeer {
    host: string;
    port: number;
  }

  /** A routing-table entry; `id` is absent for nodes only known by address. */
  export interface DhtNode {
    host: string;
    port: number;
    id?: Buffer;
  }

  export interface DhtOptions {
    /** 'host:port' strings or {host, port}; false = seed (no bootstrap). Undefined = public routers. */
    bootstrap?: false | Array<string | DhtPeer>;
    /** Node id (20 bytes, or hex). */
    nodeId?: Buffer | string;
    /**
     * NOT a bind address: when set, the node stores itself under this host in
     * its own peer store on announce. Bind with listen(port, address) instead.
     */
    host?: string | false;
    /** k-rpc query timeout in ms (default 2000). */
    timeout?: number;
    /** Age in ms after which stored peer records expire (0 = never). */
    maxAge?: number;
    maxPeers?: number;
    maxTables?: number;
    maxValues?: number;
    concurrency?: number;
    timeBucketOutdated?: number;
  }

  export interface DhtJson {
    nodes: DhtPeer[];
    values: Record<string, unknown>;
  }

  export interface DhtEvents {
    ready: [];
    listening: [];
    close: [];
    error: [err: Error & { code?: string }];
    warning: [err: Error];
    /** from = the node that returned the peer, or null when it came from the local store. */
    peer: [peer: DhtPeer, infoHash: Buffer, from: DhtPeer | null];
    node: [node: DhtNode];
    announce: [peer: DhtPeer, infoHash: Buffer, from: DhtPeer];
    announce_peer: [infoHash: Buffer, from: DhtPeer];
    get_peers: [infoHash: Buffer];
  }

  export type DhtCallback = (err: Error | null, visitedNodes?: number) => void;

  export default class DHT extends EventEmitter<DhtEvents> {
    constructor(opts?: DhtOptions);
    readonly nodeId: Buffer;
    readonly listening: boolean;
    readonly destroyed: boolean;
    readonly ready?: boolean;
    /** Binds the UDP socket. Call right after construction. */
    listen(port?: number, address?: string, onlistening?: () => void): void;
    address(): AddressInfo;
    /** port 0 means implied_port (the DHT's UDP port): always pass the real port. */
    announce(infoHash: Buffer | Uint8Array | string, port: number, cb?: DhtCallback): void;
    /** Returns a function that stops further 'peer' emits of this lookup. */
    lookup(infoHash: Buffer | Uint8Array | string, cb?: DhtCallback): () => void;
    addNode(node: DhtNode): void;
    removeNode(id: Buffer | string): void;
    toJSON(): DhtJson;
    destroy(cb?: () => void): void;
  }

  export { DHT as Client };
}
