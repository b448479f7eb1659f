/**
 * Shared compliance suite for discovery mechanisms (DiscoveryMechanism in
 * src/discovery/mechanisms/mechanism.ts). A mechanism passes if:
 * - its first round ends exactly once (`roundDone`), also after refreshes;
 * - it finds the server the factory set up (when the factory names one);
 * - every candidate is a plausible {host, port};
 * - stop() is idempotent (a second call resolves once the first is done), and nothing reaches the sink after it;
 * - refresh() and forget() never throw, before start or after stop.
 *
 *   discoveryMechanismSuite("Mine", { create: async () => ({ mechanism, expect, cleanup }) });
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DiscoveryMechanism, MechanismSink } from "../../src/discovery/mechanisms/mechanism.js";
import type { PeerAddress } from "../../src/discovery/peer-table.js";
import { waitUntil } from "../helpers/nodes.js";

export interface MechanismSetup {
  mechanism: DiscoveryMechanism;
  /** A server address the mechanism must find (none for mechanisms that connect by themselves). */
  expect?: PeerAddress;
  /** Releases what the factory started (not the mechanism: the suite stops it). */
  cleanup(): Promise<void>;
}

export interface MechanismFactory {
  create(): Promise<MechanismSetup>;
}

const T = 10_000;

class RecordingSink implements MechanismSink {
  readonly peers: PeerAddress[] = [];
  rounds = 0;
  found(peer: PeerAddress): void {
    this.peers.push(peer);
  }
  roundDone(): void {
    this.rounds++;
  }
}

/** A few turns of the event loop (lets anything already scheduled run). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export function discoveryMechanismSuite(name: string, factory: MechanismFactory): void {
  describe(`discovery mechanism compliance: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function setUp(): Promise<MechanismSetup> {
      const setup = await factory.create();
      cleanups.push(() => setup.cleanup(), () => setup.mechanism.stop());
      return setup;
    }

    it("the first round ends exactly once, and the expected server is found", { timeout: 30_000 }, async () => {
      const { mechanism, expect } = await setUp();
      assert.equal(typeof mechanism.name, "string");
      const sink = new RecordingSink();
      await mechanism.start(sink);
      await waitUntil(() => sink.rounds > 0, T, `${name}: first round`);
      if (expect) await waitUntil(() => sink.peers.some((p) => p.host === expect.host && p.port === expect.port), T, `${name}: finds ${expect.host}:${expect.port}`);
      for (const p of sink.peers) {
        assert.equal(typeof p.host, "string");
        assert.ok(p.host.length > 0);
        assert.ok(Number.isInteger(p.port) && p.port > 0 && p.port < 65536, `port ${p.port}`);
      }
      mechanism.refresh?.();
      await settle();
      assert.equal(sink.rounds, 1, "roundDone is reported once");
    });

    it("stop() is idempotent and nothing reaches the sink after it; refresh/forget never throw", { timeout: 30_000 }, async () => {
      const { mechanism, expect } = await setUp();
      mechanism.refresh?.();
      mechanism.forget?.({ host: "127.0.0.1", port: 1 });
      const sink = new RecordingSink();
      await mechanism.start(sink);
      await waitUntil(() => sink.rounds > 0, T, `${name}: first round`);
      // A second stop() resolves only once the first is done (it used to return at once, with sockets and stores still open).
      let firstDone = false;
      void mechanism.stop().then(() => (firstDone = true));
      await mechanism.stop();
      assert.ok(firstDone, "a second stop() resolved before the first had finished");
      await mechanism.stop();
      const seen = sink.peers.length;
      mechanism.refresh?.();
      if (expect) mechanism.forget?.(expect);
      await settle();
      assert.equal(sink.peers.length, seen, "no candidate after stop");
      assert.equal(sink.rounds, 1);
    });
  });
}
