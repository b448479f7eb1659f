import { after, before } from "node:test";

/**
 * The crash guard of hostile-input tests: collects every unhandled rejection
 * while the calling test file runs (hooks registered at its top level); the
 * tests assert that the returned list is empty.
 */
export function collectUnhandledRejections(): unknown[] {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  before(() => void process.on("unhandledRejection", onUnhandled));
  after(() => void process.off("unhandledRejection", onUnhandled));
  return unhandled;
}
