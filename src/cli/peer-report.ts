/**
 * What `serve` prints about servers found on the DHT and dials given up.
 * A dead server stays announced for a while and every lookup finds it
 * again: each address is printed when first found, and given up on once
 * until it connects again. Strangers can flood the topic with fresh
 * addresses (an outside check printed 93,000 lines in a minute), so both
 * sets are bounded and these lines are limited to LINES_PER_MINUTE, the
 * rest counted in one summary line.
 */
import { BoundedSet } from "../base/bounded-set.js";
import { dialKey } from "../network/dial-target.js";
import type { Out } from "./command.js";

/** Addresses remembered as found, and as given up on (the oldest forgotten first). */
const MAX_ADDRESSES_REMEMBERED = 4096;
/** "found" and "gave up" lines printed a minute at most. */
export const LINES_PER_MINUTE = 30;
const MINUTE = 60_000;

export class PeerReport {
  /** Addresses found on the DHT (the status command marks them). */
  readonly found = new BoundedSet<string>(MAX_ADDRESSES_REMEMBERED);
  private readonly gaveUp = new BoundedSet<string>(MAX_ADDRESSES_REMEMBERED);
  private windowStart = -Infinity;
  private printed = 0;
  private skipped = { found: 0, gaveUp: 0 };

  constructor(
    private readonly out: Out,
    private readonly now: () => number = Date.now,
  ) {}

  peerFound(p: { host: string; port: number }): void {
    if (this.found.add(dialKey(p.host, p.port))) this.limited("found", `DHT peer found: ${p.host}:${p.port}`);
  }

  peerConnected(p: { peerId: string; isServer: boolean; host?: string; port?: number }): void {
    if (p.host !== undefined && p.port !== undefined) this.gaveUp.delete(dialKey(p.host, p.port));
    this.out(`peer connected: ${p.peerId} (${p.isServer ? "server" : "client"}${p.host ? ` ${p.host}:${p.port}` : ""})`);
  }

  dialFailed(e: { host: string; port: number; reason: string; final: boolean }): void {
    if (!e.final || !this.gaveUp.add(dialKey(e.host, e.port))) return;
    this.limited("gaveUp", `gave up on ${e.host}:${e.port}: ${e.reason || "no reason given"} (not printed again for this address until it connects)`);
  }

  /** Prints what was left unprinted since the last line that was printed (also when serve stops). */
  summary(): void {
    const { found, gaveUp } = this.skipped;
    if (found + gaveUp > 0) this.out(`(not printed since: ${found} more DHT peers found, ${gaveUp} more given up on)`);
    this.skipped = { found: 0, gaveUp: 0 };
  }

  private limited(kind: "found" | "gaveUp", line: string): void {
    const now = this.now();
    if (now - this.windowStart >= MINUTE) {
      this.summary();
      this.windowStart = now;
      this.printed = 0;
    }
    if (this.printed++ < LINES_PER_MINUTE) this.out(line);
    else this.skipped[kind]++;
  }
}
