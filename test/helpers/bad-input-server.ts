/**
 * The server a raw `ws` client attacks in bad-input.test.ts (frames, the
 * handshake) and bad-records.test.ts (records): a ToolDb server on
 * 127.0.0.1 holding one record stored before the attacks, with the checks
 * every attack ends with. Call `badInputServer()` inside a describe: it
 * registers that describe's before/after hooks.
 */
import { after, afterEach, before } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../../src/index.js";
import type { ToolDbOptions } from "../../src/node/options.js";
import type { ErrorCode } from "../../src/base/errors.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import type { RefusalEvent } from "../../src/network/network-adapter.js";
import { record, waitFor, withTimeout } from "./wait.js";
import { portOf, startServer as startNodeServer } from "./nodes.js";
import { RawLink, openRawLinks } from "./raw-peer.js";
import { collectUnhandledRejections } from "./unhandled.js";

export const TOPIC = "bad-input";
export const T = 5000;

/** A process-wide guard: an unhandled rejection fails the test it happened in. */
const unhandled = collectUnhandledRejections();

/** A server on TOPIC. */
export function startServer(opts: Partial<ToolDbOptions> = {}): Promise<ToolDb> {
  return startNodeServer({ topic: TOPIC, ...opts });
}

/** Raw peers on TOPIC, from 127.0.0.1. */
export const RawPeer = {
  open: (port: number) => RawLink.open(port, { topic: TOPIC }),
  connect: (port: number) => RawLink.connect(port, { topic: TOPIC }),
};

export interface BadInputServer {
  /** The server attacked (set in before()). */
  srv: ToolDb;
  /** The record it stored before the attacks. */
  precious: ToolDbRecord;
  /** The refusals recorded since watchRefusals(). */
  refusals: { events: Array<[RefusalEvent]>; stop(): void } | undefined;
  /** Starts recording refusals; call before the attack. */
  watchRefusals(): Array<[RefusalEvent]>;
  /** Waits for a refusal with `code` whose reason matches `reason`. */
  refusal(code: ErrorCode, reason: RegExp): Promise<RefusalEvent>;
  /** The record stored before the attacks is unchanged, and a fresh peer is served. */
  assertIntact(): Promise<void>;
}

/** Starts the server before the describe's tests and closes it after; after each test, closes its raw links and checks for unhandled rejections. */
export function badInputServer(): BadInputServer {
  const fx: BadInputServer = {
    srv: undefined as unknown as ToolDb,
    precious: undefined as unknown as ToolDbRecord,
    refusals: undefined,
    watchRefusals() {
      fx.refusals = record<[RefusalEvent]>(fx.srv, "refused");
      return fx.refusals.events;
    },
    refusal(code, reason) {
      return waitFor(fx.srv, "refused", T, (e) => e.code === code && reason.test(e.reason)).then(([e]) => e);
    },
    async assertIntact() {
      assert.deepEqual(await fx.srv.records.get("precious"), fx.precious, "stored record changed");
      const probe = await RawPeer.connect(portOf(fx.srv));
      const got = await probe.get("precious");
      assert.deepEqual(got, fx.precious);
      probe.terminate();
    },
  };

  before(async () => {
    fx.srv = await startServer({ maxMessageBytes: 64 * 1024 });
    await fx.srv.putData("precious", "original");
    fx.precious = (await fx.srv.records.get("precious"))!;
    assert.equal(fx.precious.v, "original");
  });

  after(async () => {
    await withTimeout(fx.srv.close(), T, "server close");
  });

  afterEach(async () => {
    fx.refusals?.stop();
    fx.refusals = undefined;
    for (const p of openRawLinks) p.terminate();
    openRawLinks.clear();
    assert.deepEqual(unhandled.splice(0), [], "unhandled rejections during the test");
  });

  return fx;
}
