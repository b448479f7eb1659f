/**
 * Messages in and out by type, counted on every link (plain increments, so
 * it costs nothing worth measuring). Metrics read it when scraped.
 */
export class TrafficCounters {
  readonly received = new Map<string, number>();
  readonly sent = new Map<string, number>();
  /** Frames not sent because they exceeded what the peer accepts (a bug of the path that built them; each is logged). */
  readonly oversize = new Map<string, number>();

  in(type: string): void {
    this.received.set(type, (this.received.get(type) ?? 0) + 1);
  }

  out(type: string, count = 1): void {
    this.sent.set(type, (this.sent.get(type) ?? 0) + count);
  }

  tooLarge(type: string): void {
    this.oversize.set(type, (this.oversize.get(type) ?? 0) + 1);
  }
}
