/**
 * The window of reconciliation messages in flight (src/node/sync/message-window.ts):
 * never more than its width at once, never more than its message budget, and
 * a failure stops further sends and is reported once the others ended.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runWindow } from "../src/node/sync/message-window.js";

/** Exchanges that end when the test lets them, in any order. */
class Exchanges {
  inFlight = 0;
  most = 0;
  readonly sent: number[] = [];
  private readonly waiting: { message: number; end: (error?: Error) => void }[] = [];

  exchange = (message: number): Promise<void> => {
    this.sent.push(message);
    this.most = Math.max(this.most, ++this.inFlight);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({
        message,
        end: (error) => {
          this.inFlight--;
          if (error) reject(error);
          else resolve();
        },
      });
    });
  };

  /** Ends the exchange that has waited longest (or the newest), with an error if given. */
  async end(newest = false, error?: Error): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    const entry = newest ? this.waiting.pop() : this.waiting.shift();
    entry?.end(error);
    return entry !== undefined;
  }
}

describe("message window", () => {
  it("keeps at most `width` exchanges in flight and sends every message", async () => {
    const ex = new Exchanges();
    let made = 1;
    const done = runWindow(0, { next: async () => (made < 20 ? made++ : undefined), exchange: ex.exchange, width: 3, maxMessages: 100 });
    let newest = false;
    while (await ex.end((newest = !newest)));
    assert.equal(await done, 20);
    assert.deepEqual([...ex.sent].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
    assert.equal(ex.most, 3);
  });

  it("stops at the message budget", async () => {
    const ex = new Exchanges();
    let made = 1;
    const done = runWindow(0, { next: async () => made++, exchange: ex.exchange, width: 2, maxMessages: 7 });
    while (await ex.end());
    assert.equal(await done, 7);
    assert.equal(ex.sent.length, 7);
  });

  it("sends nothing after a failure and rejects with it once the exchanges in flight ended", async () => {
    const ex = new Exchanges();
    let made = 1;
    let settled = false;
    const done = runWindow(0, { next: async () => made++, exchange: ex.exchange, width: 2, maxMessages: 100 });
    done.catch(() => undefined).finally(() => (settled = true));
    await ex.end(); // 0 ends: 1 and 2 in flight
    await ex.end(false, new Error("peer refused"));
    const sentAtFailure = ex.sent.length;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, "waits for the exchange still in flight");
    while (await ex.end());
    await assert.rejects(done, /peer refused/);
    assert.equal(ex.sent.length, sentAtFailure);
  });

  it("a failing next() ends the window with its error", async () => {
    const ex = new Exchanges();
    const done = assert.rejects(runWindow(0, { next: async () => Promise.reject(new Error("source closed")), exchange: ex.exchange, width: 2, maxMessages: 10 }), /source closed/);
    while (await ex.end());
    await done;
  });
});
