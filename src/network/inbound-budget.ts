/**
 * Bytes the stream and WebSocket links of a transport hold for frames not
 * complete yet (on WebSocket: the fragments of an unfinished message),
 * bounded over all of them (`maxReceiveBuffered`): past it, the link
 * holding the most is closed, as the send budget drops the link with the
 * largest queue. A frame may be as large as `maxMessageBytes` (1 MiB), and
 * a peer that sends all of one but its last bytes, then a byte now and
 * then (any byte is a sign of life), held that much for as long as it
 * liked: a thousand such links held a gigabyte.
 */

/**
 * What a kept read costs beside its bytes (a Buffer, its ArrayBuffer and backing store): measured at about 400 bytes
 * of memory a 1-byte read; what a link is charged for each separate buffer it holds of an unfinished frame.
 */
export const CHUNK_OVERHEAD_BYTES = 512;

/** A link that holds part of a frame; told to go when it holds the most past the budget. */
export interface InboundHolder {
  overBudget(): void;
}

export class InboundBudget {
  private readonly held = new Map<InboundHolder, number>();
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes held for unfinished frames by all links together. */
  get bytes(): number {
    return this.total;
  }

  /** `holder` now holds `bytes` of an unfinished frame (0 once it completed, or the link closed). */
  update(holder: InboundHolder, bytes: number): void {
    const before = this.held.get(holder) ?? 0;
    if (bytes === before) return;
    this.total += bytes - before;
    if (bytes === 0) this.held.delete(holder);
    else this.held.set(holder, bytes);
    while (this.total > this.maxBytes && this.held.size > 0) {
      // Only over the budget: a scan of the links holding partial frames (at most one a link).
      let largest: InboundHolder | undefined;
      let most = -1;
      for (const [h, b] of this.held) {
        if (b > most) {
          most = b;
          largest = h;
        }
      }
      this.held.delete(largest!);
      this.total -= most;
      largest!.overBudget();
    }
  }
}
