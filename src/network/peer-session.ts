import type { OutgoingMessage, PeerRecord } from "../core/messages.js";
import type { Connection } from "./connection.js";
import type { TrafficCounters } from "./traffic.js";

/** A connection that completed the ToolDb handshake with a verified identity. */
export class PeerSession {
  readonly openedAt: number;
  /** Wire extensions the peer listed in its handshake (none for tool-db 2.6.6). */
  caps: ReadonlySet<string> = new Set();

  constructor(
    readonly connection: Connection,
    /** Full node address (public key), verified from the signed peer record. */
    readonly address: string,
    /** tool-db's id for the peer: last 20 chars of the address. */
    readonly clientId: string,
    readonly isServer: boolean,
    readonly record: PeerRecord,
    now: number,
    /** Counts what is sent on this session, by type. */
    private readonly traffic?: TrafficCounters,
  ) {
    this.openedAt = now;
  }

  get outgoing(): boolean {
    return this.connection.info.outgoing;
  }

  get host(): string | undefined {
    return this.connection.info.remoteHost;
  }

  get port(): number | undefined {
    return this.connection.info.remotePort;
  }

  sendRaw(frame: string): void {
    this.connection.send(frame);
  }

  send(message: OutgoingMessage): void {
    this.traffic?.out(message.type);
    this.connection.send(JSON.stringify({ to: [], ...message }));
  }
}
