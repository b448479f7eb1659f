/**
 * What `serve` prints about servers found on the DHT and dials given up.
 * A dead server stays announced for a while and every lookup finds it
 * again: each address is printed when first found, and given up on once
 * until it connects again. Both sets are bounded: a topic flooded with bogus
 * announces must not grow them for ever.
 */
import { BoundedSet } from "../base/bounded-set.js";
import { dialKey } from "../network/dial-target.js";
import type { Out } from "./command.js";

/** Addresses remembered as found, and as given up on (the oldest forgotten first). */
const MAX_ADDRESSES_REMEMBERED = 4096;

export class PeerReport {
  /** Addresses found on the DHT (the status command marks them). */
  readonly found = new BoundedSet<string>(MAX_ADDRESSES_REMEMBERED);
  private readonly gaveUp = new BoundedSet<string>(MAX_ADDRESSES_REMEMBERED);

  constructor(private readonly out: Out) {}

  peerFound(p: { host: string; port: number }): void {
    if (this.found.add(dialKey(p.host, p.port))) this.out(`DHT peer found: ${p.host}:${p.port}`);
  }

  peerConnected(p: { peerId: string; isServer: boolean; host?: string; port?: number }): void {
    if (p.host !== undefined && p.port !== undefined) this.gaveUp.delete(dialKey(p.host, p.port));
    this.out(`peer connected: ${p.peerId} (${p.isServer ? "server" : "client"}${p.host ? ` ${p.host}:${p.port}` : ""})`);
  }

  dialFailed(e: { host: string; port: number; reason: string; final: boolean }): void {
    if (!e.final || !this.gaveUp.add(dialKey(e.host, e.port))) return;
    this.out(`gave up on ${e.host}:${e.port}: ${e.reason || "no reason given"} (not printed again for this address until it connects)`);
  }
}
