/** Minimal typing for multicast-dns 7 (CommonJS, no bundled types). */
declare module "multicast-dns" {
  import { EventEmitter } from "node:events";

  export interface MdnsRecord {
    name: string;
    type: string;
    ttl?: number;
    data?: unknown;
  }

  export interface MdnsPacket {
    questions?: Array<{ name: string; type: string }>;
    answers?: MdnsRecord[];
    additionals?: MdnsRecord[];
  }

  export interface MdnsRemoteInfo {
    address: string;
    port: number;
  }

  export interface MulticastDns extends EventEmitter {
    query(packet: MdnsPacket): void;
    respond(packet: MdnsPacket, rinfo?: MdnsRemoteInfo): void;
    destroy(cb?: () => void): void;
  }

  export default function multicastDns(opts?: object): MulticastDns;
}
