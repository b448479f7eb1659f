import assert from "node:assert/strict";
import { afterEach } from "node:test";
import type { RefusalEvent, ToolDb, ToolDbOptions } from "../../src/index.js";
import { closeAll, startServer } from "./nodes.js";
import { terminateRawLinks } from "./raw-peer.js";
import { collectUnhandledRejections } from "./unhandled.js";

/** What an attack test's suite uses to start its victims. */
export interface AttackFixture {
  /** Closes `db` after the test; returns it. */
  track<T extends ToolDb>(db: T): T;
  /** A server on the suite's topic (closed after the test), with every refusal it reports. */
  server(opts?: Partial<ToolDbOptions>): Promise<{ db: ToolDb; refused: RefusalEvent[] }>;
}

/**
 * The setup the attack tests share (call it at a suite's top level): after
 * each test the raw attacker links are terminated, `cleanup` runs (e.g.
 * sockets of the test's own), every node the test started is closed, and no
 * rejection may have gone unhandled meanwhile.
 */
export function attackFixture(topic: string, handshakeTimeout: number, cleanup?: () => void): AttackFixture {
  const unhandled = collectUnhandledRejections();
  const nodes: ToolDb[] = [];
  afterEach(async () => {
    terminateRawLinks();
    cleanup?.();
    await closeAll(...nodes.splice(0));
    assert.deepEqual(unhandled.splice(0), [], "unhandled rejections during the test");
  });
  const track = <T extends ToolDb>(db: T): T => {
    nodes.push(db);
    return db;
  };
  return {
    track,
    async server(opts = {}) {
      const db = track(await startServer({ topic, handshakeTimeout, ...opts }));
      const refused: RefusalEvent[] = [];
      db.on("refused", (e) => refused.push(e));
      return { db, refused };
    },
  };
}
