/**
 * Bytes the stream and WebSocket links of a transport hold for frames not
 * complete yet (on WebSocket: the fragments of an unfinished message),
 * bounded over all of them (`maxReceiveBuffered`). A frame may be as large
 * as `maxMessageBytes` (1 MiB), and a peer that sends all of one but its
 * last bytes, then a byte now and then (any byte is a sign of life), held
 * that much for as long as it liked: a thousand such links held a gigabyte.
 *
 * Past the budget a link is closed, as the send budget drops the link with
 * the largest queue; but not simply the link holding the most: an attacker
 * with many links each holding a little less than an honest link's large
 * frame in progress would have the honest link closed. Links are grouped by
 * address site (IPv4 /24, IPv6 /48: a /64 each costs an attacker nothing;
 * a link from an exempt IP, or with no address, stands alone), and the largest link of the group holding the most goes
 * first, so many links of one network pay for themselves.
 */
import { addressSite } from "../limits/address-range.js";

/**
 * What a kept read costs beside its bytes (a Buffer, its ArrayBuffer and backing store): measured at about 400 bytes
 * of memory a 1-byte read; what a link is charged for each separate buffer it holds of an unfinished frame.
 */
export const CHUNK_OVERHEAD_BYTES = 512;

/** A link that holds part of a frame; told to go when it is chosen past the budget. */
export interface InboundHolder {
  readonly info: { readonly remoteHost?: string };
  overBudget(): void;
}

interface Held {
  bytes: number;
  group: unknown;
}

export class InboundBudget {
  private readonly held = new Map<InboundHolder, Held>();
  /** Bytes held by each address site's links (each exempt or unaddressed link is its own group). */
  private readonly groups = new Map<unknown, number>();
  private total = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly exemptIps: readonly string[] = [],
  ) {}

  /** Bytes held for unfinished frames by all links together. */
  get bytes(): number {
    return this.total;
  }

  /** `holder` now holds `bytes` of an unfinished frame (0 once it completed, or the link closed). */
  update(holder: InboundHolder, bytes: number): void {
    const entry = this.held.get(holder);
    const before = entry?.bytes ?? 0;
    if (bytes === before) return;
    const group = entry?.group ?? this.groupOf(holder);
    this.total += bytes - before;
    this.addToGroup(group, bytes - before);
    if (bytes === 0) this.held.delete(holder);
    else if (entry) entry.bytes = bytes;
    else this.held.set(holder, { bytes, group });
    while (this.total > this.maxBytes && this.held.size > 0) {
      // Only over the budget: scans of the groups and of the links holding partial frames (at most one a link).
      const victim = this.largestOf(this.heaviestGroup());
      const { bytes: held, group: of } = this.held.get(victim)!;
      this.held.delete(victim);
      this.total -= held;
      this.addToGroup(of, -held);
      victim.overBudget();
    }
  }

  private groupOf(holder: InboundHolder): unknown {
    const ip = holder.info.remoteHost;
    if (!ip || this.exemptIps.includes(ip)) return holder;
    return addressSite(ip) ?? ip;
  }

  private addToGroup(group: unknown, delta: number): void {
    const bytes = (this.groups.get(group) ?? 0) + delta;
    if (bytes <= 0) this.groups.delete(group);
    else this.groups.set(group, bytes);
  }

  private heaviestGroup(): unknown {
    let heaviest: unknown;
    let most = -1;
    for (const [group, bytes] of this.groups) {
      if (bytes > most) {
        most = bytes;
        heaviest = group;
      }
    }
    return heaviest;
  }

  /** The link of `group` holding the most (any link if the group is gone, which the bookkeeping never lets happen). */
  private largestOf(group: unknown): InboundHolder {
    let largest: InboundHolder | undefined;
    let most = -1;
    for (const [holder, { bytes, group: of }] of this.held) {
      if (of === group && bytes > most) {
        most = bytes;
        largest = holder;
      }
    }
    return largest ?? this.held.keys().next().value!;
  }
}
