import type { PeerInfo } from "hyperswarm";

/**
 * Hyperswarm keeps one ban flag a peer (neither dialed nor taken while
 * set), and three rules here set it for reasons of their own: a peer
 * shunned for a while (swarm-shuns.ts), a duplicate link held off
 * while the kept link stands (swarm-duplicates.ts), a peer rotated out of
 * its slot (swarm-slots.ts). Each lifts it when its own reason ends; with
 * the one flag, the first to end lifted the others' bans too. Here each
 * reason holds the ban and the flag is cleared when the last lets go.
 */
export class SwarmBans {
  private readonly holds = new Map<PeerInfo, number>();

  /** One more reason to ban `info`. */
  hold(info: PeerInfo): void {
    const n = (this.holds.get(info) ?? 0) + 1;
    this.holds.set(info, n);
    if (n === 1) info.ban(true);
  }

  /** One reason to ban `info` ended (a release without a hold does nothing). */
  release(info: PeerInfo): void {
    const n = this.holds.get(info);
    if (n === undefined) return;
    if (n > 1) {
      this.holds.set(info, n - 1);
      return;
    }
    this.holds.delete(info);
    info.ban(false);
  }

  /** Reasons holding `info` banned now. */
  count(info: PeerInfo): number {
    return this.holds.get(info) ?? 0;
  }

  /** The swarm is closing: nothing is held (hyperswarm's own records go with it). */
  clear(): void {
    this.holds.clear();
  }
}
