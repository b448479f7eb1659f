/**
 * Messages in and out by type, counted on every link (plain increments, so
 * it costs nothing worth measuring). Metrics read it when scraped.
 */
export class TrafficCounters {
  readonly received = new Map<string, number>();
  readonly sent = new Map<string, number>();

  in(type: string): void {
    this.received.set(type, (this.received.get(type) ?? 0) + 1);
  }

  out(type: string, count = 1): void {
    this.sent.set(type, (this.sent.get(type) ?? 0) + count);
  }
}
