/** A peering's candidate source that a test feeds: addresses offered now, and ones found later (`announce`). */
import type { PeerSource } from "../../src/peering/dht-peering.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";

export class StubSource implements PeerSource {
  private readonly listeners = new Set<(id: unknown, peer: PeerAddress, source: unknown) => void>();
  constructor(private readonly found: PeerAddress[]) {}
  on(_event: "peer", listener: (id: unknown, peer: PeerAddress, source: unknown) => void): void {
    this.listeners.add(listener);
  }
  off(_event: "peer", listener: (id: unknown, peer: PeerAddress, source: unknown) => void): void {
    this.listeners.delete(listener);
  }
  peers(): PeerAddress[] {
    return this.found;
  }
  refresh(): boolean {
    return false;
  }
  forget(): boolean {
    return false;
  }
  announce(peer: PeerAddress, source = "mainline"): void {
    this.found.push(peer);
    for (const l of this.listeners) l(undefined, peer, source);
  }
}
