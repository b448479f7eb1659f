/**
 * Minimal typing for hyperswarm 4, hyperdht 6 and hyperdht/testnet (CommonJS,
 * no bundled types). Only what this project uses.
 */
declare module "hyperdht" {
  import { EventEmitter } from "node:events";

  export interface HyperDhtNodeAddress {
    host: string;
    port: number;
  }

  export interface KeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }

  export interface HyperDhtOptions {
    /** `host:port` strings or addresses; without it, hyperdht's public bootstrap nodes. */
    bootstrap?: Array<string | HyperDhtNodeAddress>;
    /** UDP bind address. */
    host?: string;
    port?: number;
    /** false: fail when `port` is busy (by default hyperdht tries the next ports, then any). */
    anyPort?: boolean;
    ephemeral?: boolean;
    firewalled?: boolean;
  }

  export default class HyperDHT extends EventEmitter {
    constructor(opts?: HyperDhtOptions);
    static keyPair(seed?: Buffer): KeyPair;
    readonly destroyed: boolean;
    ready(): Promise<void>;
    fullyBootstrapped(): Promise<void>;
    address(): { host: string; port: number };
    destroy(opts?: { force?: boolean }): Promise<void>;
  }
}

declare module "hyperdht/testnet.js" {
  import HyperDHT, { type HyperDhtNodeAddress, type HyperDhtOptions } from "hyperdht";

  export interface Testnet {
    nodes: HyperDHT[];
    bootstrap: HyperDhtNodeAddress[];
    createNode(opts?: HyperDhtOptions): HyperDHT;
    destroy(): Promise<void>;
  }

  export default function createTestnet(size?: number, opts?: { host?: string; port?: number; bootstrap?: HyperDhtNodeAddress[] }): Promise<Testnet>;
}

declare module "hyperswarm" {
  import { EventEmitter } from "node:events";
  import type HyperDHT from "hyperdht";
  import type { HyperDhtNodeAddress, KeyPair } from "hyperdht";

  /** A Noise-encrypted duplex stream (streamx), one per remote public key. */
  export interface SwarmSocket {
    readonly isInitiator: boolean;
    readonly remotePublicKey: Buffer;
    readonly destroyed: boolean;
    readonly rawStream?: { remoteHost?: string; remotePort?: number };
    write(data: Uint8Array): boolean;
    end(): void;
    destroy(err?: Error): void;
    on(event: "data", listener: (chunk: Buffer) => void): this;
    on(event: "end" | "close" | "open", listener: () => void): this;
    on(event: "error", listener: (err: Error) => void): this;
    once(event: string, listener: (...args: any[]) => void): this;
    off(event: string, listener: (...args: any[]) => void): this;
  }

  export interface PeerInfo {
    publicKey: Buffer;
    readonly banned: boolean;
    /** When (ms) its last dial failed or its last link closed (0: never). */
    readonly disconnectedTime: number;
    /** Linked at least once. */
    readonly proven: boolean;
    client: boolean;
    topics: Buffer[];
    ban(value: boolean): void;
    reconnect(value: boolean): void;
  }

  export interface PeerDiscovery {
    flushed(): Promise<void>;
    refresh(opts?: { server?: boolean; client?: boolean }): Promise<void>;
    destroy(): Promise<void>;
  }

  export interface HyperswarmOptions {
    bootstrap?: Array<string | HyperDhtNodeAddress>;
    dht?: HyperDHT;
    keyPair?: KeyPair;
    seed?: Buffer;
    maxPeers?: number;
    firewall?: (remotePublicKey: Buffer) => boolean;
  }

  export default class Hyperswarm extends EventEmitter {
    constructor(opts?: HyperswarmOptions);
    readonly dht: HyperDHT;
    readonly keyPair: KeyPair;
    readonly connections: Set<SwarmSocket>;
    /** Dials in progress. */
    readonly connecting: number;
    /** The peers it knows (found by lookups, or linked), by public key in hex. */
    readonly peers: Map<string, PeerInfo>;
    readonly destroyed: boolean;
    join(topic: Buffer, opts?: { server?: boolean; client?: boolean }): PeerDiscovery;
    leave(topic: Buffer): Promise<void>;
    /** Dial this peer (at once, past `maxPeers`) and keep redialing it until `leavePeer`. */
    joinPeer(publicKey: Buffer): void;
    leavePeer(publicKey: Buffer): void;
    flush(): Promise<boolean>;
    destroy(opts?: { force?: boolean }): Promise<void>;
    on(event: "connection", listener: (socket: SwarmSocket, info: PeerInfo) => void): this;
    on(event: "update", listener: () => void): this;
    on(event: string, listener: (...args: any[]) => void): this;
  }
}
