import { afterEach } from "node:test";
import type { ToolDb } from "../../src/index.js";
import { closeAll } from "./nodes.js";

/** What a test made and must undo: stops first (peerings, selections), then ToolDb nodes, then other servers and peers. */
export interface Teardown {
  stops: Array<() => void | Promise<void>>;
  nodes: ToolDb[];
  closers: Array<{ close(): unknown }>;
}

/** Lists a describe block's tests fill; after each test everything in them is undone, in that order, and the lists emptied. */
export function teardownEach(): Teardown {
  const t: Teardown = { stops: [], nodes: [], closers: [] };
  afterEach(async () => {
    for (const stop of t.stops.splice(0)) await stop();
    await closeAll(...t.nodes.splice(0));
    for (const c of t.closers.splice(0)) await c.close();
  });
  return t;
}
